"""``rtudp.testing``: pytest fixtures for code that uses rtudp (a pytest plugin).

Registered through the ``pytest11`` entry point, so installing rtudp makes these
fixtures available in every test suite (``import rtudp`` never imports pytest;
only pytest imports this module):

``rtudp_pool``
    An isolated :class:`rtudp.Pool` with a unique name (unique per pytest-xdist
    worker too), workers spawned, stopped at teardown.
``rtudp_channel_pair``
    Two endpoints connected to each other on loopback, as a :class:`ChannelPair`
    ``(a, b, implementation)``: ``"channel"`` (default) gives two
    :class:`rtudp.Channel` of ``rtudp_pool``; ``"socket"`` and ``"emulated"`` give
    started RtUDP endpoints (:class:`rtudp.RtUdpBase`) on ``rtudp_pool`` or on
    ``rtudp_emulated_net``, for code written against the RtUDP interface.
``rtudp_emulated_net``
    An :class:`rtudp.EmulatedNetwork` with the :class:`rtudp.Impairment` asked for.

The marker's ``impairment`` (an :class:`rtudp.Impairment` or a dict of its fields)
applies to every implementation: the emulated network impairs what it carries, and
on ``"channel"`` and ``"socket"`` pairs each end's worker impairs what that end sends.

Parametrise them indirectly or with the ``rtudp`` marker::

    @pytest.mark.parametrize("rtudp_pool", [[0], [0, 1]], indirect=True)   # CPUs
    @pytest.mark.parametrize("rtudp_channel_pair", ["socket", "emulated"], indirect=True)
    @pytest.mark.rtudp(cpus=[0], rt_priority=0, impairment={"loss": 0.1, "seed": 1})

``rtudp_pool`` takes a list of CPUs or a dict of :class:`rtudp.Pool` arguments;
``rtudp_channel_pair`` an implementation name or ``{"implementation": ...,
"capacity": ...}``; ``rtudp_emulated_net`` an :class:`Impairment` or a dict of its
fields.  At teardown every fixture fails the test if a ``/dev/shm/rtudp.*``
segment or a worker process it started is left behind (and removes/kills it); a
failing test gets the pool's worker table and channel counters in its report.
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from rtudp.shmring.observe import snapshot_pool
from rtudp.workers.registry import process_alive, segment_files, unlink_segments

from .compat import create_rtudp
from .compat_base import RtUdpBase
from rtudp.shmring.impairment import Impairment

from .emulated import EmulatedNetwork
from .pool import Pool

IMPLEMENTATIONS = ("channel", "socket", "emulated")
_POOL_ARGS = ("cpus", "rt_priority", "group", "idle", "spin_budget", "idle_poll", "rx_coalesce_us",
              "tx_coalesce_us", "tx_lateness_us", "horizon_s", "worker", "placement")
_counter = itertools.count()
_POOLS_KEY = pytest.StashKey[list]()


# ------------------------------------------------------------ names and options


def unique_pool_name() -> str:
    """A pool name no other test process uses: ``t<pid>_<xdist worker>_<n>``
    (short, so channel segment names ``<pool>.<channel>`` still fit)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "m")
    return f"t{os.getpid()}_{worker}_{next(_counter)}"


def _options(request: pytest.FixtureRequest, own_param: str) -> dict[str, Any]:
    """The ``rtudp`` marker's keywords, overridden by this fixture's indirect param."""
    opts: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers("rtudp"))):
        if mark.args:
            raise pytest.UsageError(f"@pytest.mark.rtudp takes keywords only, got "
                                    f"{mark.args!r} on {request.node.nodeid}")
        opts.update(mark.kwargs)
    param = getattr(request, "param", None)
    if request.fixturename == own_param and param is not None:
        opts.update(_param_as_options(own_param, param))
    return opts


def _param_as_options(fixture: str, param: Any) -> dict[str, Any]:
    if isinstance(param, dict):
        return dict(param)
    if fixture == "rtudp_pool" and isinstance(param, (list, tuple)):
        return {"cpus": list(param)}
    if fixture == "rtudp_channel_pair" and isinstance(param, str):
        return {"implementation": param}
    if fixture == "rtudp_emulated_net" and isinstance(param, Impairment):
        return {"impairment": param}
    raise pytest.UsageError(f"{fixture} cannot be parametrised with {param!r}: see "
                            f"rtudp.testing's docstring")


# ------------------------------------------------------------ leak checks


def pool_report(pool: Pool) -> str:
    """The pool's workers and each channel's counters and latency, as text."""
    lines = [f"rtudp pool {pool.name!r}:"]
    try:
        snap = snapshot_pool(pool.name)
    except Exception as exc:  # the pool may be what failed
        return f"rtudp pool {pool.name!r}: cannot read it: {exc}"
    for w in snap.workers:
        lines.append(f"  worker {w['index']} pid {w['pid']} cpu {w['cpu']} {w['state']} "
                     f"restarts {w['restarts']} loops {w['loops']} sleeps {w['sleeps']} "
                     f"spin_margin {w['spin_margin_ns']} ns channels {w['channels']}")
    for ch in snap.channels:
        if ch.error:
            lines.append(f"  channel {ch.name}: {ch.error}")
            continue
        counters = " ".join(f"{k}={v}" for k, v in ch.counters.items() if v)
        lines.append(f"  channel {ch.name} worker {ch.config['worker']}: {counters or 'idle'}")
        lines.append(f"    tx lateness: {ch.tx_lateness.summary()}")
        lines.append(f"    rx delay:    {ch.rx_delay.summary()}")
    return "\n".join(lines)


def check_pool_gone(name: str, pids: set[int]) -> list[str]:
    """What pool ``name`` left behind (segments, worker processes), removed/killed."""
    problems = []
    left = segment_files(name)
    if left:
        unlink_segments(name)
        problems.append(f"segments left in /dev/shm: {left}")
    deadline = time.monotonic() + 2.0
    alive = {p for p in pids if process_alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = {p for p in alive if process_alive(p)}
    for pid in sorted(alive):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if alive:
        problems.append(f"worker processes still running after stop (killed): {sorted(alive)}")
    return problems


def _worker_pids(pool: Pool) -> set[int]:
    try:
        return {w["pid"] for w in pool.workers() if w["pid"] > 0}
    except Exception:
        return set()


# ------------------------------------------------------------ fixtures


@pytest.fixture
def rtudp_pool(request: pytest.FixtureRequest) -> Iterator[Pool]:
    """An isolated, running :class:`rtudp.Pool` with a unique name; stopped at teardown,
    which fails the test if a segment or worker process of it is left behind."""
    opts = _options(request, "rtudp_pool")
    args = {k: opts[k] for k in _POOL_ARGS if k in opts}
    pool = Pool(unique_pool_name(), **args).start()
    pids = _worker_pids(pool)
    request.node.stash.setdefault(_POOLS_KEY, []).append(pool)
    try:
        yield pool
    finally:
        pids |= _worker_pids(pool)  # restarted workers too
        request.node.stash[_POOLS_KEY].remove(pool)
        pool.stop()
        problems = check_pool_gone(pool.name, pids)
        if problems:
            pytest.fail(f"rtudp_pool {pool.name!r}: " + "; ".join(problems), pytrace=False)


def _impairment(opts: dict[str, Any]) -> Impairment | None:
    """The ``impairment`` option (an Impairment, a dict of its fields, or None)."""
    try:
        return Impairment.of(opts.get("impairment"))
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"impairment: {exc}") from None


@pytest.fixture
def rtudp_emulated_net(request: pytest.FixtureRequest) -> Iterator[EmulatedNetwork]:
    """An in-process :class:`rtudp.EmulatedNetwork` with the impairment asked for
    (``impairment=`` an Impairment or a dict of its fields); closed at teardown,
    which fails the test if its delivery thread is still running."""
    imp = _impairment(_options(request, "rtudp_emulated_net")) or Impairment()
    before = set(threading.enumerate())
    net = EmulatedNetwork(imp)
    try:
        yield net
    finally:
        net.close()
        mine = [t for t in threading.enumerate() if t not in before and
                t.name.startswith("rtudp-emulated")]
        for t in mine:
            t.join(2.0)
        stuck = [t.name for t in mine if t.is_alive()]
        if stuck:
            pytest.fail(f"rtudp_emulated_net: threads still running after close: {stuck}",
                        pytrace=False)


@dataclass
class ChannelPair:
    """Two endpoints sending to each other: ``a`` -> ``b`` and ``b`` -> ``a``."""

    a: Any
    b: Any
    implementation: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.a, self.b))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def rtudp_channel_pair(request: pytest.FixtureRequest) -> Iterator[ChannelPair]:
    """Two connected endpoints on loopback (see :class:`ChannelPair`); closed at teardown."""
    opts = _options(request, "rtudp_channel_pair")
    impl = opts.get("implementation", "channel")
    if impl not in IMPLEMENTATIONS:
        raise pytest.UsageError(f"unknown rtudp implementation {impl!r}: use one of "
                                f"{list(IMPLEMENTATIONS)}")
    capacity = opts.get("capacity", 1024)
    # a worker impairs what each end sends; the emulated network all it carries
    imp = {"impairment": _impairment(opts)} if impl != "emulated" else {}
    ends: list[Any] = []
    try:
        if impl == "channel":
            pool: Pool = request.getfixturevalue("rtudp_pool")
            port_b = _free_port()
            a = pool.open_channel("a", remote=("127.0.0.1", port_b), capacity=capacity,
                                  cpu=pool.cpus[0], **imp)
            ends.append(a)
            ends.append(pool.open_channel("b", local=("127.0.0.1", port_b), remote=a.local,
                                          capacity=capacity, cpu=pool.cpus[-1], **imp))
        else:
            where = ({"pool": request.getfixturevalue("rtudp_pool"), **imp} if impl == "socket"
                     else {"network": request.getfixturevalue("rtudp_emulated_net")})
            pa, pb = _free_port(), _free_port()
            for local, remote in ((pa, pb), (pb, pa)):
                end: RtUdpBase = create_rtudp(impl, "127.0.0.1", local, "127.0.0.1", remote,
                                              capacity=capacity, **where)
                end.init_socket()
                ends.append(end)
                end.start()
        yield ChannelPair(ends[0], ends[1], impl)
    finally:
        for end in reversed(ends):
            if impl == "channel":
                end.close()
            else:
                end.close_socket()


# ------------------------------------------------------------ hooks


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``rtudp`` marker."""
    config.addinivalue_line(
        "markers", "rtudp(cpus=None, idle=None, rt_priority=None, placement=None, "
                   "implementation='channel', impairment=None, capacity=1024): options for "
                   "the rtudp fixtures")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that uses ``rtudp_pool`` gets the pool's stats in its report
    (read before teardown stops the pool)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when == "call":
        for pool in item.stash.get(_POOLS_KEY, []):
            if pool.running:
                rep.sections.append((f"rtudp pool {pool.name}", pool_report(pool)))


__all__ = ["ChannelPair", "IMPLEMENTATIONS", "check_pool_gone", "pool_report",
           "rtudp_channel_pair", "rtudp_emulated_net", "rtudp_pool", "unique_pool_name"]
