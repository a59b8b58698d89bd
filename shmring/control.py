"""A pool's control segment ``/rtudp.<pool>``: header, pool block, workers, channels,
then the command ring (clients -> supervisor) and the reply ring (supervisor -> clients).

The supervisor creates it (:meth:`ControlSegment.create`); clients, tools and
workers map it (:meth:`ControlSegment.open`), validated in C
(``rtudp_control_validate``).  Everything read from it afterwards that is used as
an index (a worker number, a name) is bounds-checked here again, since any
process that can map the segment can write it.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any

from ._native import ffi, lib
from .errors import BadSegmentError, PoolNotRunningError, SegmentNotFoundError
from .kinds import COUNTER_GROUPS, read_counters
from .ringspan import LazyRing, RingSpan, SpanBroadcastRing, SpanMpscRing
from .segment import DEFAULT_MODE, Segment, c_checked, check_message, shm_path

#: pool names: a segment name without '.', which separates pool and channel
_POOL = re.compile(r"[A-Za-z0-9_-]{1,%d}" % lib.RTUDP_NAME_MAX)
DEFAULT_POOL = "default"
#: a supervisor whose heartbeat is older than this is gone (workers exit at 2 s)
HEARTBEAT_STALE_NS = 2_000_000_000

WORKER_STATES = {
    lib.RTUDP_WORKER_EMPTY: "empty", lib.RTUDP_WORKER_STARTING: "starting",
    lib.RTUDP_WORKER_RUNNING: "running", lib.RTUDP_WORKER_DEAD: "dead",
}


def pool_name(name: object = None) -> str:
    """The pool to use: ``name``, else ``$RTUDP_POOL``, else ``"default"``; validated."""
    if name is None:
        name = os.environ.get("RTUDP_POOL") or DEFAULT_POOL
    if not isinstance(name, str):
        raise TypeError(f"pool name must be a str, not {type(name).__name__}: {name!r}")
    if not _POOL.fullmatch(name):
        raise ValueError(f"invalid pool name {name!r}: must match [A-Za-z0-9_-]{{1,"
                         f"{lib.RTUDP_NAME_MAX}}} ('.' separates pool and channel names)")
    return name


def channel_segment_name(pool: str, channel: str) -> str:
    """``<pool>.<channel>``: the channel segment's name, checked to be a valid one."""
    full = f"{pool}.{channel}"
    if len(full) > lib.RTUDP_NAME_MAX:
        raise ValueError(f"channel name {channel!r} is too long for pool {pool!r}: "
                         f"'{full}' has {len(full)} characters, at most {lib.RTUDP_NAME_MAX}")
    return full


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists and has not exited: a zombie (killed, not yet
    waited for by its parent) has; EPERM means it exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _read_start_ticks(pid) != 0


def stat_fields(stat: bytes) -> list[bytes]:
    """The fields of a ``/proc/<pid>[/task/<tid>]/stat`` from the state on (field 3,
    index 0): the command name before them, in parentheses, may hold spaces and ')',
    so they follow the last ')'."""
    return stat[stat.rfind(b")") + 2:].split()


def _read_start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``; 0: no such process, or it has exited (a
    zombie); None: it could not be read for another reason (no file descriptor left)."""
    if pid <= 0:
        return 0
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(4096)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except OSError:
        return None
    fields = stat_fields(stat)
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return 0
    try:
        return int(fields[19])
    except ValueError:
        return None


def process_start_ticks(pid: int) -> int:
    """When process ``pid`` started (clock ticks after boot, field 22 of
    ``/proc/<pid>/stat``); 0 if there is no such process, it has exited (a zombie) or
    it cannot be told."""
    return _read_start_ticks(pid) or 0


def process_exited(pid: int, start_ticks: int) -> bool:
    """True unless process ``pid``, started at ``start_ticks``
    (:func:`process_start_ticks`), still runs: a stopped process runs, a zombie or a
    pid now another process's does not.  ``start_ticks`` 0 (unknown): True; a stat
    that cannot be read for another reason (no file descriptor left) is no proof of
    death: False."""
    if start_ticks == 0:
        return True
    now = _read_start_ticks(pid)
    return now is not None and now != start_ticks


def _cstr(arr: Any, size: int) -> str:
    """A NUL-terminated char array from shared memory, never read past ``size``."""
    return _cstr_bytes(bytes(ffi.buffer(arr, size)))


def _cstr_bytes(raw: bytes) -> str:
    """A NUL-terminated name copied out of shared memory."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


# a channel slot's geometry, from the C layout
_SLOT_SIZE = ffi.sizeof("struct rtudp_channel_slot")
_STATE_AT = ffi.offsetof("struct rtudp_channel_slot", "state")
_NAME_SIZE = ffi.sizeof(ffi.new("struct rtudp_channel_slot *").name)


class ControlSegment:
    """A mapped control segment; ``c`` is the ``struct rtudp_control *``, ``commands``
    the command ring (MPSC) and ``replies`` the reply ring (broadcast)."""

    def __init__(self, pool: str, segment: Segment,
                 supervisor: tuple[int, int] | None = None,
                 _spans: tuple[RingSpan, RingSpan] | None = None) -> None:
        self.pool = pool
        self.segment = segment
        self._free_hint = 0  # free_slot starts looking here
        #: the command and reply rings' places, validated (``_spans``: by the
        #: ControlSegment this one shares a mapping with); their objects are made when
        #: first used: a channel handle never uses them
        self._spans = self._validate(pool, segment) if _spans is None else _spans
        self.c: Any = ffi.cast("struct rtudp_control *", segment.base)
        #: the supervisor's start time (process_start_ticks), taken while its heartbeat
        #: is fresh, so that it is the process that beats; 0: unknown.  ``supervisor``
        #: (pid, start ticks), from a caller that is the supervisor, spares reading
        #: /proc for it (a /proc/<pid>/stat read costs more than the rest of an open)
        if supervisor is not None and supervisor[0] == self.supervisor_pid:
            self.supervisor_start = supervisor[1]
        else:
            self.supervisor_start = (process_start_ticks(self.supervisor_pid)
                                     if self.heartbeat_age_ns() < HEARTBEAT_STALE_NS else 0)

    @staticmethod
    def _validate(pool: str, segment: Segment) -> tuple[RingSpan, RingSpan]:
        cmd, reply = ffi.new("void **"), ffi.new("void **")
        cmd_avail, reply_avail = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        check = ffi.new("struct rtudp_check *")
        if lib.rtudp_control_rings(segment.base, segment.size, cmd, cmd_avail, reply,
                                   reply_avail, check) != lib.RTUDP_OK:
            raise BadSegmentError(f"control segment {shm_path(pool)}: {check_message(check)}")
        return (RingSpan(pool + "/commands", cmd[0], int(cmd_avail[0])),
                RingSpan(pool + "/replies", reply[0], int(reply_avail[0])))

    commands = LazyRing(0, SpanMpscRing, "The command ring (clients put requests, the "
                                         "supervisor takes them).")
    replies = LazyRing(1, SpanBroadcastRing, "The reply ring (the supervisor writes, every "
                                             "client reads its own).")

    # ---- life cycle

    @classmethod
    def create(cls, pool: str, n_workers: int, mode: int = DEFAULT_MODE,
               horizon_ns: int = lib.RTUDP_HORIZON_DEFAULT_NS) -> "ControlSegment":
        """Create ``/rtudp.<pool>`` for this process as supervisor (FileExistsError if taken).

        ``horizon_ns``: how far ahead of now a send may be due on the pool's channels
        (1 .. RTUDP_HORIZON_MAX_NS)."""
        pool = pool_name(pool)
        if not 1 <= n_workers <= lib.RTUDP_MAX_WORKERS:
            raise ValueError(f"a pool has 1..{lib.RTUDP_MAX_WORKERS} workers, got {n_workers}")
        if not 1 <= horizon_ns <= lib.RTUDP_HORIZON_MAX_NS:
            raise ValueError(f"a pool's deadline horizon is 1..{lib.RTUDP_HORIZON_MAX_NS} ns, "
                             f"got {horizon_ns}")
        size = int(lib.rtudp_control_segment_size())
        with Segment.create(pool, size, mode).removed_on_error() as seg:
            c = ffi.cast("struct rtudp_control *", seg.base)
            now = time.monotonic_ns()
            c.pool.supervisor_pid = os.getpid()
            c.pool.n_workers = n_workers
            c.pool.started_ns = now
            c.pool.heartbeat_ns = now
            c.pool.max_channels = lib.RTUDP_MAX_CHANNELS
            c.pool.horizon_ns = horizon_ns
            c_checked(lib.rtudp_control_init, seg.base, size, error=BadSegmentError)
            return cls(pool, seg)

    @classmethod
    def open(cls, pool: str | None = None, writable: bool = True,
             supervisor: tuple[int, int] | None = None) -> "ControlSegment":
        """Map and validate a running pool's control segment (``writable=False``:
        read-only, for monitors).  ``supervisor``: (pid, start ticks) of the pool's
        supervisor, from the supervisor's own process (used if the pid matches).

        PoolNotRunningError if there is none; BadSegmentError if it is not valid.
        """
        pool = pool_name(pool)
        try:
            seg = Segment.open(pool, writable)
        except SegmentNotFoundError:
            raise PoolNotRunningError(f"pool {pool!r} is not running (no {shm_path(pool)})") \
                from None
        try:
            return cls(pool, seg, supervisor)
        except BaseException:
            seg.close()
            raise

    def share(self) -> "ControlSegment":
        """Another ControlSegment over this one's mapping (Segment.share), for a channel
        handle this process makes: it is closed on its own, and costs no mmap."""
        seg = self.segment.share()
        try:
            spans = tuple(RingSpan(sp.name, sp.mem, sp.avail) for sp in self._spans)
            return type(self)(self.pool, seg, (self.supervisor_pid, self.supervisor_start),
                              spans)  # type: ignore[arg-type]
        except BaseException:
            seg.close()
            raise

    def close(self) -> None:
        """Forget the rings and unmap (idempotent)."""
        if not self.segment.closed:
            LazyRing.close_all(self)
        self.segment.close()
        self.c = None

    def unlink(self) -> None:
        """Remove the name (idempotent)."""
        self.segment.unlink()

    @property
    def closed(self) -> bool:
        """True once unmapped."""
        return self.segment.closed

    # ---- the pool block

    @property
    def n_workers(self) -> int:
        """Workers in the table, bounds-checked."""
        n = int(self.c.pool.n_workers)
        if n > lib.RTUDP_MAX_WORKERS:
            raise BadSegmentError(f"control segment {shm_path(self.pool)} lists {n} workers")
        return n

    @property
    def horizon_ns(self) -> int:
        """How far ahead of now (ns) a send may be due on this pool's channels, checked
        against the range a valid segment has (the supervisor writes it once)."""
        ns = int(self.c.pool.horizon_ns)
        if not 1 <= ns <= lib.RTUDP_HORIZON_MAX_NS:
            raise BadSegmentError(f"control segment {shm_path(self.pool)}: deadline horizon "
                                  f"{ns} ns is outside 1..{lib.RTUDP_HORIZON_MAX_NS}")
        return ns

    @property
    def supervisor_pid(self) -> int:
        """The supervisor's pid as the segment says."""
        return int(self.c.pool.supervisor_pid)

    def heartbeat_age_ns(self) -> int:
        """Nanoseconds since the supervisor's last heartbeat."""
        return time.monotonic_ns() - int(self.c.pool.heartbeat_ns)

    def beat(self) -> None:
        """Supervisor: write the heartbeat now."""
        self.c.pool.heartbeat_ns = time.monotonic_ns()

    def supervisor_exited(self) -> bool:
        """True if the supervisor's heartbeat is stale and its process has exited: the
        pool is gone.  A supervisor that is only slow to beat (stopped, starved) is not;
        its workers carry on serving the channels."""
        return (self.heartbeat_age_ns() > HEARTBEAT_STALE_NS
                and process_exited(self.supervisor_pid, self.supervisor_start))

    def supervisor_alive(self) -> bool:
        """True if the supervisor process exists and its heartbeat is fresh."""
        return pid_alive(self.supervisor_pid) and self.heartbeat_age_ns() < HEARTBEAT_STALE_NS

    # ---- workers

    def worker(self, index: int) -> Any:
        """``struct rtudp_worker_slot *`` of worker ``index`` (checked against n_workers)."""
        if not 0 <= index < self.n_workers:
            raise BadSegmentError(f"worker index {index} outside the pool's {self.n_workers} "
                                  f"workers ({shm_path(self.pool)})")
        return ffi.addressof(self.c.workers[index])

    def bell(self, index: int) -> Any:
        """The TX doorbell of worker ``index``: ring it after queueing for that worker."""
        return ffi.addressof(self.worker(index), "bell")

    def ready_set(self, index: int) -> Any:
        """``struct rtudp_ready_set *`` of worker ``index``: where its producers mark
        the channels they queued into (csrc/readyset.h)."""
        self.worker(index)  # checks the index
        return ffi.addressof(self.c.ready[index])

    def wire_producer(self, tx: Any, block: Any, table_slot: int) -> None:
        """Make ``tx`` (a channel's TX ring) wake the channel's worker on each commit:
        the one its channel ``block`` names at that moment (the pool moves channels
        between workers), marking ``table_slot`` in that worker's ready set, then
        ringing its bell.  An index outside the pool's workers wakes none."""
        route = ffi.new("struct rtudp_mpsc_route *")
        route.worker = ffi.addressof(block, "worker")
        route.bells = ffi.cast("uint8_t *", self.bell(0))
        route.bell_stride = ffi.sizeof("struct rtudp_worker_slot")
        route.ready_sets = ffi.cast("uint8_t *", self.ready_set(0))
        route.ready_stride = ffi.sizeof("struct rtudp_ready_set")
        route.n = self.n_workers
        tx.wire_route(route, table_slot)

    def ring_worker(self, index: int) -> None:
        """Wake worker ``index`` (TX records are waiting for it)."""
        lib.rtudp_bell_ring(self.bell(index))

    def post_command(self, index: int) -> None:
        """Tell worker ``index`` a command waits on its socket, and wake it."""
        lib.rtudp_worker_post_command(self.worker(index))

    def workers(self) -> list[dict[str, Any]]:
        """Every worker slot as a dict, read without locks: who it is (index, pid, cpu,
        policy, priority, state, started_ns, heartbeat_ns), its counters as rtudp_shm.h
        describes them (RTUDP_WORKER_COUNTERS), and the settings it published as the
        slot holds them: ``idle_strategy`` (an index in the idle strategy table) and
        ``tunable_values`` (the worker's integers, in the tunable table's order);
        :func:`rtudp.workers.tunables.with_settings` names them."""
        out = []
        for i in range(self.n_workers):
            w = self.c.workers[i]
            out.append({
                "index": i, "pid": int(w.pid), "cpu": int(w.cpu), "policy": int(w.policy),
                "priority": int(w.priority),
                "state": WORKER_STATES.get(int(w.state), str(int(w.state))),
                "started_ns": int(w.started_ns), "heartbeat_ns": int(w.heartbeat_ns),
                **read_counters(COUNTER_GROUPS["worker"], ffi.addressof(w)),
                "idle_strategy": int(w.idle_strategy),
                "tunable_values": [int(v) for v in w.tunables],
            })
        return out

    # ---- channels

    def _table(self) -> memoryview:
        """The channel table's bytes, in place: thousands of slots are searched in C
        (a regex, a strided view), not slot by slot through cffi."""
        return memoryview(ffi.buffer(self.c.channels, self._slot_count() * _SLOT_SIZE))

    def _slot_count(self) -> int:
        """Slots of the channel table: the pool's size, within what the layout holds."""
        return min(int(self.c.pool.max_channels), lib.RTUDP_MAX_CHANNELS)

    def slot_name(self, index: int) -> str:
        """The name in channel slot ``index``."""
        return _cstr(self.c.channels[index].name, ffi.sizeof(self.c.channels[index].name))

    def find_channel(self, name: str, hint: int | None = None) -> int | None:
        """Index of the open channel ``name``, or None.  ``hint``: the slot it likely
        holds (what an open answered), read first: the table is searched only if the
        channel is not there, so a handle for a channel just opened costs one slot's
        read whatever the number of channels."""
        if hint is not None and self._slot_holds(hint, name):
            return hint
        table = self._table()
        states = table.cast("I")[_STATE_AT // 4::_SLOT_SIZE // 4]
        for m in re.finditer(re.escape(name.encode()) + b"\0", table):
            at = m.start()
            if at % _SLOT_SIZE == 0 and states[at // _SLOT_SIZE] == lib.RTUDP_CHANNEL_OPEN:
                return at // _SLOT_SIZE
        return None

    def _slot_holds(self, index: int, name: str) -> bool:
        """Channel slot ``index`` exists and holds the open channel ``name``."""
        return (0 <= index < self._slot_count()
                and int(self.c.channels[index].state) == lib.RTUDP_CHANNEL_OPEN
                and self.slot_name(index) == name)

    def channel_kind(self, index: int) -> int:
        """The RTUDP_KIND_* code of channel slot ``index``."""
        return int(self.c.channels[index].kind)

    def channel_names(self) -> list[str]:
        """Names of the open channels."""
        table = self._table()
        states = table.cast("I")[_STATE_AT // 4::_SLOT_SIZE // 4].tolist()
        return [_cstr_bytes(bytes(table[i * _SLOT_SIZE:i * _SLOT_SIZE + _NAME_SIZE]))
                for i, st in enumerate(states) if st == lib.RTUDP_CHANNEL_OPEN]

    def free_slot(self) -> int | None:
        """Index of a free channel slot, or None if the table is full.  The search
        starts after the slot last handed out, so opening many channels one after the
        other finds each at once."""
        table = self._table()
        states = table.cast("I")[_STATE_AT // 4::_SLOT_SIZE // 4]
        n = len(states)
        for k in range(n):
            i = (self._free_hint + k) % n
            if states[i] == lib.RTUDP_CHANNEL_FREE:
                self._free_hint = (i + 1) % n
                return i
        return None

    def set_channel(self, index: int, name: str, kind: int, worker: int) -> None:
        """Supervisor: fill channel slot ``index`` and publish it (state OPEN last)."""
        s = self.c.channels[index]
        raw = name.encode()
        ffi.memmove(s.name, b"\0" * ffi.sizeof(s.name), ffi.sizeof(s.name))
        ffi.memmove(s.name, raw, len(raw))
        s.kind = kind
        s.worker = worker
        s.generation += 1
        s.state = lib.RTUDP_CHANNEL_OPEN
        self.c.pool.channel_generation += 1

    def set_channel_worker(self, index: int, worker: int) -> None:
        """Supervisor: channel slot ``index`` is served by worker ``worker`` now (a
        move: the slot stays the same channel, its generation unchanged)."""
        self.c.channels[index].worker = worker

    def count_moves(self, n: int) -> None:
        """Supervisor: ``n`` more channels moved between workers (rtstat shows it)."""
        self.c.pool.channel_moves += n

    def clear_channel(self, index: int) -> None:
        """Supervisor: free channel slot ``index``."""
        s = self.c.channels[index]
        s.state = lib.RTUDP_CHANNEL_CLOSING
        ffi.memmove(s.name, b"\0" * ffi.sizeof(s.name), ffi.sizeof(s.name))
        s.worker = -1
        s.state = lib.RTUDP_CHANNEL_FREE
        self.c.pool.channel_generation += 1

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.n_workers} workers"
        return f"<ControlSegment {shm_path(self.pool)} {state}>"


__all__ = ["ControlSegment", "DEFAULT_POOL", "HEARTBEAT_STALE_NS", "channel_segment_name",
           "process_exited", "process_start_ticks", "stat_fields",
           "pid_alive", "pool_name"]
