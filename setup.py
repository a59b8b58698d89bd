"""Only what pyproject.toml cannot say: the C and cffi extensions and the worker executable."""
from __future__ import annotations

import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

WORKER = "rtudp-worker"
# every .c the worker links (the engine files it uses, then its own: worker/worker.h)
WORKER_SOURCES = [
    "csrc/ring.c", "csrc/segment.c", "csrc/hist.c", "csrc/impair.c", "csrc/rx_publish.c",
    "csrc/readers.c", "csrc/procstat.c",
    "csrc/worker/timerq.c", "csrc/worker/inflight.c", "csrc/worker/netio.c",
    "csrc/worker/main.c", "csrc/worker/control.c", "csrc/worker/conductor.c",
    "csrc/worker/handoff.c", "csrc/worker/sched.c",
    "csrc/worker/channels.c", "csrc/worker/txloop.c", "csrc/worker/txsend.c",
    "csrc/worker/txstamp.c", "csrc/worker/rxloop.c", "csrc/worker/spin.c",
    "csrc/worker/txjournal.c", "csrc/worker/impair_apply.c", "csrc/worker/asyncwake.c",
    "csrc/worker/tap.c", "csrc/worker/holdq.c", "csrc/worker/cpushare.c", "csrc/worker/hostpause.c",
    "csrc/worker/cputrace.c", "csrc/worker/guard.c", "csrc/worker/thread.c",
    "csrc/worker/warmup.c", "csrc/worker/sysfile.c", "csrc/worker/idlepoller.c",
    "csrc/worker/tunables.c", "csrc/worker/mechanisms.c", "csrc/worker/pacer.c",
    "csrc/worker/pacer_rt.c", "csrc/worker/chanheap.c", "csrc/worker/chantimes.c",
    "csrc/worker/histbatch.c",
    # the channel kinds, and the RTP library the rtp kind uses
    *sorted(glob.glob("csrc/proto/*.c")),
    *sorted(f for f in glob.glob("csrc/rtp/*.c") if not f.endswith("pyrtp.c")),
    # the UDT4 protocol library (pure functions; the udt kind uses it)
    *sorted(glob.glob("csrc/udt/*.c")),
]
WORKER_INCLUDES = ["csrc", "csrc/worker"]
WORKER_CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
WORKER_LDFLAGS = ["-pthread"]

# the rings' per-call paths and Channel's send/recv as CPython methods (csrc/pyfast.c
# says why not cffi, and what each of its files does); only PyInit__fast is exported
FAST = Extension(
    "rtudp.shmring._fast",
    sources=["csrc/pyfast.c", *sorted(glob.glob("csrc/pyfast/*.c")), "csrc/ring.c",
             "csrc/direct_send.c", "csrc/direct_recv.c", "csrc/rx_publish.c", "csrc/rt_wait.c",
             "csrc/hist.c", "csrc/procstat.c", "csrc/readers.c",
             "csrc/worker/netio.c", "csrc/worker/sysfile.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-Wno-missing-field-initializers", "-fvisibility=hidden"],
)

# the RTP library (csrc/rtp/) as CPython types: per-packet calls (csrc/rtp/pyrtp.c says why)
RTP_SOURCES = ["csrc/rtp/pyrtp.c", "csrc/rtp/header.c", "csrc/rtp/generator.c",
               "csrc/rtp/jbuf.c", "csrc/rtp/g711.c", "csrc/rtp/resample.c"]
RTP = Extension(
    "rtudp.rtp._rtp",
    sources=RTP_SOURCES,
    include_dirs=["csrc", "csrc/rtp"],
    extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
)


class BuildExtAndWorker(build_ext):
    """Builds the cffi extension, then the native worker program into rtudp/workers/."""

    def run(self) -> None:
        super().run()
        self._build_worker()

    def _worker_target(self) -> str:
        return os.path.join(self.build_lib, "rtudp", "workers", WORKER)

    def _build_worker(self) -> None:
        objects = self.compiler.compile(
            WORKER_SOURCES, output_dir=self.build_temp, include_dirs=WORKER_INCLUDES,
            extra_postargs=WORKER_CFLAGS)
        target = self._worker_target()
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.compiler.link_executable(objects, WORKER, output_dir=os.path.dirname(target),
                                      extra_postargs=WORKER_LDFLAGS)
        if self.inplace or getattr(self, "editable_mode", False):
            # editable installs import rtudp.workers from the source folder
            src_dir = self.get_finalized_command("build_py").get_package_dir("rtudp.workers")
            # copy beside it, then rename over it: running workers keep the old file
            # (copying over a running executable fails with ETXTBSY)
            tmp = os.path.join(src_dir, f".{WORKER}.{os.getpid()}")
            shutil.copy2(target, tmp)
            os.replace(tmp, os.path.join(src_dir, WORKER))

    def get_outputs(self) -> list[str]:
        return super().get_outputs() + [self._worker_target()]


setup(
    ext_modules=[FAST, RTP],
    # the product's extension, and the benchmarks' C loops in one of their own
    cffi_modules=["csrc/build_ffi.py:ffibuilder", "csrc/bench/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtAndWorker},
)
