"""Only what pyproject.toml cannot say: the cffi extension and the worker executable."""
from __future__ import annotations

import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

WORKER = "rtudp-worker"
WORKER_SOURCES = ["csrc/worker/main.c"]
WORKER_CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]

# the rings' per-call paths as CPython methods (csrc/pyfast.c says why not cffi)
FAST = Extension(
    "rtudp.shmring._fast",
    sources=["csrc/pyfast.c", "csrc/ring.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-Wno-missing-field-initializers"],
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
            WORKER_SOURCES, output_dir=self.build_temp, include_dirs=["csrc"],
            extra_postargs=WORKER_CFLAGS)
        target = self._worker_target()
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.compiler.link_executable(objects, WORKER, output_dir=os.path.dirname(target))
        if self.inplace or getattr(self, "editable_mode", False):
            # editable installs import rtudp.workers from the source folder
            src_dir = self.get_finalized_command("build_py").get_package_dir("rtudp.workers")
            shutil.copy2(target, os.path.join(src_dir, WORKER))

    def get_outputs(self) -> list[str]:
        return super().get_outputs() + [self._worker_target()]


setup(
    ext_modules=[FAST],
    cffi_modules=["csrc/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExtAndWorker},
)
