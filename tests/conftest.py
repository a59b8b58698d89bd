"""Shared fixtures for the rtudp test-suite.

* ``shm_name`` / ``shm_names``: unique segment names for this pytest process.
  Every name starts with ``t<pid>_`` so the leak check below can find exactly
  the segments this run created (``/dev/shm/rtudp.t<pid>_*``).
* an autouse fixture that, after every test, unlinks leaked segments and fails
  the test if there were any, and kills (by PID) multiprocessing children that
  are still alive, failing the test as well.
* the skip policy: a skip says what this machine lacks (a package, tool, privilege or
  kernel feature, found by probing the machine).  In CI (``CI`` set, not "false" or
  "0": ``.ci/run`` sets it) every capability the suite uses is expected present, so a
  skip fails the test unless ``RTUDP_EXPECTED_SKIPS`` names it: one pattern a line, a
  skip is expected when its reason contains one (``.ci/run`` lists what its machine
  lacks, each with why).  The C harness (tests/c/harness.h) applies the same rule.
"""

import faulthandler
import itertools
import multiprocessing
import os
import re
import secrets
import signal

import pytest

SHM_DIR = "/dev/shm"
SEG_PREFIX = "rtudp."
# the pid keeps concurrent runs apart; the random part keeps this run from a leftover
# pool of an earlier run that had the same pid (a pool's lock is named after the pool)
#: ``t<pid>_<token>_``: the pid first and on its own, as every name of this run has it,
#: so another run starting beside this one reads the pid right and leaves these alone
#: (pytest_sessionstart); the token tells this run from an earlier one with the same pid
NAME_PREFIX = f"t{os.getpid()}_{secrets.token_hex(2)}_"
_counter = itertools.count()
#: a test still running after this many seconds is hung (normally: a few seconds):
#: dump every thread's stack and exit, so a hang is a visible failure, not a stall
HANG_TIMEOUT = 300
#: where that dump goes: pytest's capture holds stderr, and exiting loses what it holds,
#: so $RTUDP_HANG_LOG names a file to append it to (.ci/run prints it when the suite fails)
_HANG_LOG = (open(os.environ["RTUDP_HANG_LOG"], "a") if os.environ.get("RTUDP_HANG_LOG")
             else None)
_bad_chars = re.compile(r"[^A-Za-z0-9_.-]")


def new_shm_name(hint=""):
    """A fresh, valid segment name (<= 48 chars) owned by this pytest process."""
    n = next(_counter)
    name = f"{NAME_PREFIX}{n}_{_bad_chars.sub('_', hint)}"
    return name[:48].rstrip("_") or name[:48]


def shm_path(name):
    return os.path.join(SHM_DIR, SEG_PREFIX + name)


def _our_segments():
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover
        return []
    want = SEG_PREFIX + NAME_PREFIX
    return [e for e in entries if e.startswith(want)]


def in_ci():
    """Whether this run is CI's, where a skip not expected is a failure."""
    return os.environ.get("CI", "") not in ("", "false", "0")


def expected_skip(reason):
    """Whether ``RTUDP_EXPECTED_SKIPS`` names this skip (a line of it is in the reason)."""
    patterns = [line.strip() for line in os.environ.get("RTUDP_EXPECTED_SKIPS", "").splitlines()]
    return any(p and p in reason for p in patterns)


def _skip_reason(report):
    """The reason of a skipped report (pytest keeps it as (path, line, "Skipped: why"))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_unexpected_skip(report):
    """In CI, turn a skip that RTUDP_EXPECTED_SKIPS does not name into a failure."""
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if expected_skip(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped in CI, where this machine is expected to have what the test "
                       f"needs (RTUDP_EXPECTED_SKIPS names no part of the reason): {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())


def pytest_sessionstart(session):
    """Remove segments left by earlier runs whose pytest process is gone (a run that
    was killed, or that the hang watchdog ended, cannot clean up after itself).

    Also give SIGINT back its default: a shell without job control starts a command
    run in the background (``cmd &``) with SIGINT ignored, every process it starts
    inherits that, and a Python program then never raises KeyboardInterrupt.  The
    tests that interrupt a demo or an embedded pool would fail for how the suite was
    started (seen: ``.ci/run`` started with ``&`` from a script), not for rtudp."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    stale = re.compile(r"rtudp\.t(\d+)_")
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover
        return
    for e in entries:
        m = stale.match(e)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(SHM_DIR, e))
            except OSError:
                pass
        except PermissionError:
            pass


@pytest.fixture
def shm_name(request):
    """One unique segment name for this test."""
    return new_shm_name(request.node.name)


@pytest.fixture
def shm_names(request):
    """A factory of unique segment names: ``shm_names()`` -> str."""
    return lambda: new_shm_name(request.node.name)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "heavy_load: the test loads both CPUs for long (soak, memory, worker kill "
                   "at 50 kpps): it runs alone, no other test of this run beside it")
    config.addinivalue_line(
        "markers", "stress: an invariant checked under the stress harness (stalled workers, "
                   "CPU hogs, killed processes; tests/stress_harness.py): `pytest -m stress`")


@pytest.fixture(autouse=True)
def _heavy_load_alone(request):
    """A heavy_load test holds an exclusive lock, every other test a shared one, on a
    file common to every xdist worker: timing tests never run beside a soak."""
    import fcntl

    path = f"/tmp/rtudp-tests-{os.getuid()}.lock"  # shared by concurrent runs too: 2 cores
    heavy = request.node.get_closest_marker("heavy_load") is not None
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if heavy else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _no_leaks():
    if _HANG_LOG is not None:
        faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True, file=_HANG_LOG)
    else:
        faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    problems = []
    alive = multiprocessing.active_children()  # also reaps finished ones
    for p in alive:
        problems.append(f"child process {p.name} pid={p.pid} still alive")
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.join(5)
    leaked = _our_segments()
    for e in leaked:
        try:
            os.unlink(os.path.join(SHM_DIR, e))
        except FileNotFoundError:
            pass
    if leaked:
        problems.append(f"leaked shared-memory segments: {sorted(leaked)}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


class SpawnedChildren:
    """Start ``spawn`` children; ``join_all`` checks exit codes; teardown kills
    whatever is still alive (so a failing test never leaves processes behind)."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("spawn")
        self.procs = []

    def start(self, target, *args, name=None):
        p = self.ctx.Process(target=target, args=args, name=name, daemon=True)
        p.start()
        self.procs.append(p)
        return p

    def failed(self):
        """Children that already exited with a non-zero code."""
        return [p for p in self.procs if p.exitcode not in (None, 0)]

    def join_all(self, timeout=60.0):
        import time

        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
        bad = [(p.name, p.exitcode) for p in self.procs if p.exitcode != 0]
        assert not bad, f"children failed or hung (exitcode None = still running): {bad}"

    def kill_all(self):
        for p in self.procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.join(5)


@pytest.fixture
def children():
    c = SpawnedChildren()
    try:
        yield c
    finally:
        c.kill_all()


@pytest.fixture
def loopback_pair(rtudp_pool):
    """Channels a (receiver, any remote) and b (connected to a) of the test's pool, on
    loopback, on different workers when the pool has two."""
    pool = rtudp_pool
    a = pool.open_channel("a", local=("127.0.0.1", 0), cpu=pool.cpus[0])
    b = pool.open_channel("b", local=("127.0.0.1", 0), remote=a.local, cpu=pool.cpus[-1])
    return a, b
