"""The channel kinds, each defined once: the registry every layer looks kinds up in.

A kind has three sides.  Its layout is C's (``csrc/proto/kinds.def``: name, code,
the prefix of its stats keys; ``csrc/kinds.h``: its kind area's size and counters,
each described once next to its struct): :class:`Layout` and :class:`Counter`, read
through cffi.  Its pool side (the module whose ``check_options``, ``area_bytes`` and
``configure`` the supervisor calls, in :mod:`rtudp.workers`) and its handle (the
class ``Pool.open_channel`` returns, in :mod:`rtudp`, and the async wrapper
:mod:`rtudp.aio` gives it) are named here as text and imported when first used, so
this layer imports neither.  :func:`register` pairs the three into a :class:`Kind`;
the kinds rtudp ships are registered at the end of this module, one line each.

The channel block's own counters (:data:`CHANNEL_COUNTERS`), the rings' and a worker
slot's (:data:`COUNTER_GROUPS`) are described the same way.  ``stats()``, rtstat (its table per kind), ``rtstat --json`` and ``rtudp
metrics`` iterate over these descriptions: none of them names a counter.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping

from ._native import ffi, lib
from .errors import BadSegmentError
from .hist import Histogram

_TYPES = {lib.RTUDP_CTR_COUNTER: "counter", lib.RTUDP_CTR_GAUGE: "gauge",
          lib.RTUDP_CTR_HISTOGRAM: "histogram", lib.RTUDP_CTR_STATE: "state",
          lib.RTUDP_CTR_TEXT: "text"}
#: the longest text field a row may describe
_TEXT_MAX = 256
_HIST_SIZE = ffi.sizeof("struct rtudp_hist")
_INT_PTR = {(4, False): "uint32_t *", (4, True): "int32_t *", (8, False): "uint64_t *",
            (8, True): "int64_t *"}


@dataclass(frozen=True)
class Counter:
    """One counter as C describes it (``struct rtudp_counter_desc``)."""

    name: str
    #: "counter" (only grows), "gauge", "histogram" (a struct rtudp_hist), "state" or
    #: "text" (a NUL-terminated char array: rows only)
    type: str
    #: "ns", "bytes", "packets", ...; "id": an identifier; "": a plain number
    unit: str
    help: str
    offset: int
    #: bytes; 0: no storage of its own (the sum of :attr:`plus`)
    size: int
    signed: bool = False
    #: a column of rtstat's table of its kind
    show: bool = False
    #: counters whose values this one includes
    plus: tuple[str, ...] = ()
    #: a state's value names (value i is ``values[i]``)
    values: tuple[str, ...] = ()
    #: rows only: the value names its row (a Prometheus label)
    label: bool = False
    #: its name is its stats key as it stands, without the kind's prefix
    bare: bool = False

    def key(self, prefix: str) -> str:
        """Its ``stats()`` key on a kind whose keys start with ``prefix``."""
        return self.name if self.bare else prefix + self.name

    @property
    def scale(self) -> float:
        """What a stored value is multiplied by for ``stats()``: 1, or 1/256 for a fraction
        kept in 256ths (unit ``"1/256"``, RTCP's fraction lost): 0..1 then."""
        return 1 / 256 if self.unit == "1/256" else 1.0

    def value_name(self, value: int) -> str:
        """A state's value as its name (``"state 7"`` for one it does not have)."""
        return self.values[value] if 0 <= value < len(self.values) else f"state {value}"


def _text(ffi_: Any, p: Any) -> str:
    return "" if p == ffi_.NULL else ffi_.string(p).decode()


def counters_from(ffi_: Any, table: Any, n: int, struct_size: int,
                  where: str) -> tuple[Counter, ...]:
    """The ``n`` descriptions of a C ``struct rtudp_counter_desc`` table (of any cffi
    ``ffi_`` that declares it), checked against the struct they describe."""
    out: list[Counter] = []
    for i in range(n):
        d = table[i]
        c = Counter(name=_text(ffi_, d.name), type=_TYPES.get(int(d.type), ""),
                    unit=_text(ffi_, d.unit), help=_text(ffi_, d.help), offset=int(d.offset),
                    size=int(d.size), signed=bool(d.flags & lib.RTUDP_CTR_SIGNED),
                    show=bool(d.flags & lib.RTUDP_CTR_SHOW),
                    plus=tuple(_text(ffi_, d.plus).split()),
                    values=tuple(_text(ffi_, d.values).split()),
                    label=bool(d.flags & lib.RTUDP_CTR_LABEL),
                    bare=bool(d.flags & lib.RTUDP_CTR_BARE))
        want: Any = ((_HIST_SIZE,) if c.type == "histogram" else range(1, _TEXT_MAX + 1)
                     if c.type == "text" else (0,) if not c.size else (4, 8))
        if (not c.name.isidentifier() or not c.type or c.size not in want
                or c.offset + c.size > struct_size or (c.size == 0 and not c.plus)):
            raise ImportError(f"{where}: counter {i} ({c}) is not a valid description: rebuild")
        out.append(c)
    names = [c.name for c in out]
    unknown = {p for c in out for p in c.plus} - set(names)
    if len(set(names)) != len(names) or unknown:
        raise ImportError(f"{where}: counter names repeat or `plus` names unknown ones "
                          f"({sorted(unknown)})")
    return tuple(out)


def read_counters(counters: tuple[Counter, ...], base: Any) -> dict[str, Any]:
    """The values of ``counters`` of the struct at ``base`` (checked by the caller to be
    as big as their struct), read without locks: ints, a :class:`Histogram` snapshot
    for a histogram; a counter with ``plus`` includes those counters' values."""
    p = ffi.cast("uint8_t *", base)
    raw: dict[str, Any] = {}
    for c in counters:
        if c.type == "histogram":
            raw[c.name] = Histogram.snapshot(ffi.cast("struct rtudp_hist *", p + c.offset))
        elif c.type == "text":
            text = bytes(ffi.buffer(p + c.offset, c.size)).split(b"\0", 1)[0]
            raw[c.name] = text.decode(errors="replace")
        elif c.size:
            raw[c.name] = int(ffi.cast(_INT_PTR[c.size, c.signed], p + c.offset)[0])
        else:
            raw[c.name] = 0
    out = dict(raw)
    for c in counters:
        for other in c.plus:
            out[c.name] += raw[other]
    return out


def stat_keys(counters: tuple[Counter, ...], values: Mapping[str, Any],
              prefix: str = "") -> dict[str, Any]:
    """``values`` (of :func:`read_counters`) as ``stats()`` keys (:meth:`Counter.key`); a
    state's value by its name; a histogram as its count, min, mean, percentiles, max."""
    out: dict[str, Any] = {}
    for c in counters:
        if c.name not in values:
            continue
        v = values[c.name]
        if c.type == "histogram":
            out.update(v.stat_keys(c.key(prefix)))
        elif c.type == "state":
            out[c.key(prefix)] = c.value_name(v)
        else:
            out[c.key(prefix)] = v * c.scale if c.scale != 1.0 else v
    return out


def label_text(c: Counter, value: Any) -> str:
    """A row's LABEL value as text: an id in hex, a state by name, text as is."""
    if c.type == "state":
        return c.value_name(value)
    if c.unit == "id" and isinstance(value, int):
        return f"{value:08x}"
    return str(value)


@dataclass(frozen=True)
class Rows:
    """A kind's rows (one per item it serves, e.g. a udt channel's connections), as C
    describes them: their counters and the C function that copies one out."""

    #: the stats() key of the list: "connections"
    name: str
    counters: tuple[Counter, ...]
    #: bytes of one row struct
    size: int
    #: ``int (*)(const void *area, uint64_t area_bytes, uint32_t i, void *row)`` of
    #: :attr:`ffi`
    row_at: Any
    ffi: Any

    def read(self, area: Any, area_bytes: int) -> list[dict[str, Any]]:
        """Every row of a checked area, each a dict of its counters by name (the C
        function bounds-checks the area and brings every value in range)."""
        out: list[dict[str, Any]] = []
        buf = self.ffi.new("uint8_t[]", self.size)
        area_p = self.ffi.cast("void *", int(ffi.cast("uintptr_t", area)))
        i = 0
        while (got := self.row_at(area_p, area_bytes, i, buf)) >= 0:
            if got:
                out.append(read_counters(self.counters, ffi.cast(
                    "uint8_t *", int(self.ffi.cast("uintptr_t", buf)))))
            i += 1
        return out

    def stats(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` (of :meth:`read`) as ``stats()`` gives them: a state by its name."""
        return [stat_keys(self.counters, r) for r in rows]


@dataclass(frozen=True)
class Layout:
    """A kind's shared-memory side, as C describes it (a line of kinds.def)."""

    name: str
    code: int
    #: what its counters' keys start with in stats()
    prefix: str
    #: bytes of kind area its struct needs (0: none)
    area_size: int
    counters: tuple[Counter, ...] = ()
    #: the C check of an area (``int (*)(const void *, uint64_t, struct rtudp_check *)``,
    #: of :attr:`ffi`), or None
    check: Any = None
    ffi: Any = None
    #: its rows (None: the kind has none)
    rows: Rows | None = None

    def _check_area(self, area: Any, area_bytes: int, where: str) -> None:
        """BadSegmentError naming ``where`` unless the area may be read."""
        if area == ffi.NULL or area_bytes < self.area_size:
            raise BadSegmentError(f"{where}: {self.name} kind area of {area_bytes} bytes, "
                                  f"needs {self.area_size}")
        if self.check is not None:
            why = self.ffi.new("struct rtudp_check *")
            if self.check(self.ffi.cast("void *", int(ffi.cast("uintptr_t", area))),
                          area_bytes, why) != lib.RTUDP_OK:
                raise BadSegmentError(f"{where}: {_text(self.ffi, why.msg)}")

    def read_rows(self, area: Any, area_bytes: int, where: str) -> list[dict[str, Any]]:
        """Its rows of a kind area, each by counter name ([] for a kind without rows;
        BadSegmentError naming ``where`` if the area may not be read)."""
        if self.rows is None:
            return []
        self._check_area(area, area_bytes, where)
        return self.rows.read(area, area_bytes)

    def read(self, area: Any, area_bytes: int, where: str) -> dict[str, Any]:
        """The counters of a kind area (``void *``, ``area_bytes`` long), by name
        (BadSegmentError naming ``where`` if the area may not be read)."""
        if not self.counters:
            return {}
        self._check_area(area, area_bytes, where)
        return read_counters(self.counters, area)

    def stats(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (of :meth:`read`) as ``stats()`` keys, prefixed with :attr:`prefix`."""
        return stat_keys(self.counters, values, self.prefix)

    def rows_stats(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """``rows`` (of :meth:`read_rows`) as the ``stats()`` key of the rows' name
        (``{"connections": [...]}``); {} for a kind without rows."""
        return {} if self.rows is None else {self.rows.name: self.rows.stats(rows)}

    def counter(self, name: str) -> Counter:
        """The counter called ``name`` (KeyError if none)."""
        for c in self.counters:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no counter {name!r}")


def layouts_from(ffi_: Any, lib_: Any) -> dict[str, Layout]:
    """The kinds a C build describes (``rtudp_kind_at`` of the library ``lib_`` of
    ``ffi_``): the cffi extension's, or a test build's (tests/kinds/)."""
    out: dict[str, Layout] = {}
    i = 0
    while (k := lib_.rtudp_kind_at(i)) != ffi_.NULL:
        name, a = _text(ffi_, k.name), k.area
        where = f"kind {name!r} (csrc/proto/kinds.def)"
        rows = None
        if a.rows_name != ffi_.NULL:
            if a.row_at == ffi_.NULL or not int(a.row_size):
                raise ImportError(f"{where}: rows without a row function or size: rebuild")
            rows = Rows(name=_text(ffi_, a.rows_name),
                        counters=counters_from(ffi_, a.row_counters, int(a.n_row_counters),
                                               int(a.row_size), f"{where}, its rows"),
                        size=int(a.row_size), row_at=a.row_at, ffi=ffi_)
        out[name] = Layout(name=name, code=int(k.code), prefix=_text(ffi_, k.prefix),
                           area_size=int(a.size),
                           counters=counters_from(ffi_, a.counters, int(a.n_counters),
                                                  int(a.size), where),
                           check=None if a.check == ffi_.NULL else a.check, ffi=ffi_,
                           rows=rows)
        i += 1
    return out


def _counter_groups() -> dict[str, tuple[Counter, ...]]:
    """The counter groups C describes besides the kind areas (``rtudp_counter_group_at``),
    each checked against the struct cffi knows by that name."""
    out: dict[str, tuple[Counter, ...]] = {}
    g = ffi.new("struct rtudp_counter_group *")
    i = 0
    while lib.rtudp_counter_group_at(i, g):
        name, of = _text(ffi, g.name), _text(ffi, g.of)
        if ffi.sizeof(of) != int(g.size):
            raise ImportError(f"counter group {name!r}: {of} is {int(g.size)} bytes in C, "
                              f"{ffi.sizeof(of)} in cffi: rebuild")
        out[name] = counters_from(ffi, g.counters, int(g.n_counters), int(g.size),
                                  f"the counters of {of} (csrc/kinds.c: {name})")
        i += 1
    return out


#: the counter groups of the layout that are not kind areas, by name: "channel" (every
#: channel's block), "tx_ring" (an MPSC ring), "rx_ring" (a broadcast ring), "worker" (a
#: worker slot); csrc/rtudp_shm.h describes each next to its struct
COUNTER_GROUPS: dict[str, tuple[Counter, ...]] = _counter_groups()
#: the counters of every channel's block (rtudp_shm.h: RTUDP_CHANNEL_COUNTERS)
CHANNEL_COUNTERS: tuple[Counter, ...] = COUNTER_GROUPS["channel"]
#: the kinds of the cffi extension (csrc/proto/kinds.def), by name
C_LAYOUTS: dict[str, Layout] = layouts_from(ffi, lib)


# ------------------------------------------------------------ the registry


def _load(target: Any) -> Any:
    """A "module" or "module:attribute" named as text, imported; anything else as is."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


@dataclass(frozen=True)
class Kind:
    """One channel kind: its layout, its pool side, its handle (and its asyncio side)."""

    name: str
    layout: Layout
    #: the pool side: a module (or its name) with ``check_options(options) -> dict``,
    #: and optionally ``area_bytes(options) -> int`` (default: the layout's area size),
    #: ``configure(area, size, options, direction)``, ``standby(options) -> bool``
    #: (whether a second worker should guard such a channel: csrc/proto/proto.h),
    #: ``port_pair(options) -> bool`` (the channel also uses its port + 1),
    #: ``deadlines(options) -> dict`` (options that are CLOCK_MONOTONIC deadlines, by
    #: name: the pool refuses one beyond its horizon) and ``packet_rate(options,
    #: direction) -> float`` (the packets a second its options make it send and
    #: receive); None: no options, no area
    pool: ModuleType | str | None = None
    #: the handle class (or "module:Class")
    handle: type | str = "rtudp.channel:Channel"
    #: its asyncio side, for :mod:`rtudp.aio`: the class that wraps its handle (or
    #: "module:Class"); or "module" alone, for a kind whose handle has no wrapper but
    #: which wraps other objects (udt's sockets: the module registers them with
    #: ``rtudp.aio.register``).  The module is ``rtudp.aio.<name>``.  None: the handle
    #: gets the generic ``rtudp.aio.AsyncChannel`` (a handle that is an rtudp.Channel).
    aio: type | str | None = None
    #: the pool side and the handle class once imported (an open asks several times)
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                    compare=False)

    @property
    def code(self) -> int:
        """Its ``RTUDP_KIND_*`` code."""
        return self.layout.code

    def _once(self, what: str, target: Any) -> Any:
        got = self._loaded.get(what)
        if got is None:
            got = self._loaded[what] = _load(target)
        return got

    def _pool(self) -> Any:
        return None if self.pool is None else self._once("pool", self.pool)

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options of ``open_channel(..., kind=, options=)``, checked and complete
        (ValueError/TypeError naming the bad one)."""
        side = self._pool()
        if side is None:
            if options:
                raise ValueError(f"a {self.name} channel takes no options, got "
                                 f"{sorted(options)}")
            return {}
        return dict(side.check_options(options))

    def area_bytes(self, options: Mapping[str, Any]) -> int:
        """Bytes of kind area a channel with these (checked) options needs."""
        side = self._pool()
        if side is not None and hasattr(side, "area_bytes"):
            return int(side.area_bytes(options))
        return self.layout.area_size

    def configure(self, area: Any, size: int, options: Mapping[str, Any],
                  direction: int) -> None:
        """Write the area's configuration (before the worker sees the channel)."""
        side = self._pool()
        if side is not None and hasattr(side, "configure"):
            side.configure(area, size, options, direction)

    def standby(self, options: Mapping[str, Any]) -> bool:
        """Whether a channel with these (checked) options gets a standby copy on a
        second worker (when the pool has one): the kind's pool side says."""
        side = self._pool()
        return bool(side is not None and hasattr(side, "standby") and side.standby(options))

    def port_pair(self, options: Mapping[str, Any]) -> bool:
        """Whether a channel with these (checked) options also uses its port + 1 (rtp's
        RTCP): a pool-chosen port is then even, with the one above it free."""
        side = self._pool()
        return bool(side is not None and hasattr(side, "port_pair") and side.port_pair(options))

    def deadlines(self, options: Mapping[str, Any]) -> dict[str, int]:
        """The (checked) options that are deadlines, by name (0, now, left out): the
        pool checks them against its horizon when it opens the channel."""
        side = self._pool()
        if side is None or not hasattr(side, "deadlines"):
            return {}
        return dict(side.deadlines(options))

    def packet_rate(self, options: Mapping[str, Any], direction: int) -> float:
        """Packets a second a channel with these (checked) options sends and receives,
        as far as its options say (a paced stream's ptime, a cyclic exchange's
        interval); 0.0 where they do not (its traffic is whatever its user sends).  The
        pool places channels by it before their traffic can be measured."""
        side = self._pool()
        if side is None or not hasattr(side, "packet_rate"):
            return 0.0
        return float(side.packet_rate(options, direction))

    def handle_class(self) -> type:
        """The class of its handle (imported now if it was named as text)."""
        return self._once("handle", self.handle)

    def aio_class(self) -> type | None:
        """The async wrapper of its handle (imported now if named as text); None if
        its entry names none (the generic one serves it)."""
        if self.aio is None or (isinstance(self.aio, str) and ":" not in self.aio):
            return None
        return _load(self.aio)

    def aio_module(self) -> ModuleType | None:
        """Its asyncio module (imported now), None if its entry names none."""
        if self.aio is None:
            return None
        if isinstance(self.aio, str):
            return importlib.import_module(self.aio.partition(":")[0])
        return importlib.import_module(self.aio.__module__)

    def read(self, area: Any, area_bytes: int, where: str) -> dict[str, Any]:
        """Its area's counters by name (:meth:`Layout.read`)."""
        return self.layout.read(area, area_bytes, where)

    def stats(self, area: Any, area_bytes: int, where: str) -> dict[str, Any]:
        """Its area's counters as ``stats()`` keys (``rtp_rx_frames``, ``nf_rtt_p99_ns``)."""
        return self.layout.stats(self.read(area, area_bytes, where))

    def read_rows(self, area: Any, area_bytes: int, where: str) -> list[dict[str, Any]]:
        """Its area's rows (:meth:`Layout.read_rows`)."""
        return self.layout.read_rows(area, area_bytes, where)


#: names a kind may not have: metrics call their families rtudp_<kind>_..., next to these
_RESERVED = ("channel", "pool", "worker")
_BY_NAME: dict[str, Kind] = {}
_BY_CODE: dict[int, Kind] = {}
#: kind name -> :class:`Kind`: the registry (change it with :func:`register`)
KINDS: Mapping[str, Kind] = _BY_NAME


def register(name: str, pool: ModuleType | str | None = None,
             handle: type | str = "rtudp.channel:Channel",
             layout: Layout | None = None, aio: type | str | None = None) -> Kind:
    """Make kind ``name`` known: its layout (the cffi extension's kind of that name unless
    given), pool side, handle and asyncio side (:attr:`Kind.aio`).  ValueError if its
    name or code is taken."""
    if layout is None:
        if name not in C_LAYOUTS:
            raise ValueError(f"no kind {name!r} in csrc/proto/kinds.def (the cffi extension "
                             f"has {sorted(C_LAYOUTS)})")
        layout = C_LAYOUTS[name]
    if layout.name != name:
        raise ValueError(f"kind {name!r} given the layout of {layout.name!r}")
    if not name.isidentifier() or name in _RESERVED:
        raise ValueError(f"kind name {name!r}: must be an identifier, not one of {_RESERVED}")
    if name in _BY_NAME or layout.code in _BY_CODE:
        raise ValueError(f"kind {name!r} (code {layout.code}) is already registered")
    if aio is not None and not isinstance(aio, (type, str)):
        raise TypeError(f"kind {name!r}: aio= names a class or \"module[:Class]\", not "
                        f"{type(aio).__name__}")
    kind = Kind(name, layout, pool, handle, aio)
    _BY_NAME[name] = kind
    _BY_CODE[layout.code] = kind
    return kind


def unregister(name: str) -> None:
    """Forget kind ``name`` (tests: a test-only kind); no-op if unknown."""
    kind = _BY_NAME.pop(name, None)
    if kind is not None:
        _BY_CODE.pop(kind.code, None)


def kinds() -> list[Kind]:
    """Every registered kind, in registration order."""
    return list(_BY_NAME.values())


def names() -> list[str]:
    """The registered kinds' names, sorted."""
    return sorted(_BY_NAME)


def get(name: object) -> Kind:
    """Kind ``name`` (ValueError naming it and the known ones)."""
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"channel kind {name!r} is not supported: use one of {names()}")
    return _BY_NAME[name]


def find(code: int) -> Kind | None:
    """The kind of code ``code``, None if none is registered."""
    return _BY_CODE.get(code)


def kind_name(code: int) -> str:
    """A kind code as its name (``"kind 9"`` for one not registered)."""
    kind = _BY_CODE.get(code)
    return kind.name if kind is not None else f"kind {code}"


# ------------------------------------------------------------ the kinds rtudp ships
# A new kind: its line in csrc/proto/kinds.def, and one here (docs/adding-a-kind.md).

register("udp", handle="rtudp.channel:Channel")
register("rtp", pool="rtudp.workers.rtp_kind", handle="rtudp.rtp.channel:RtpChannel")
register("netflux", pool="rtudp.workers.netflux_kind",
         handle="rtudp.netflux.channel:NetfluxChannel",
         aio="rtudp.netflux.aio:AsyncNetfluxChannel")
register("udt", pool="rtudp.workers.udt_kind", handle="rtudp.udt.channel:UdtChannel",
         aio="rtudp.udt.aio")

__all__ = ["CHANNEL_COUNTERS", "COUNTER_GROUPS", "C_LAYOUTS", "Counter", "KINDS", "Kind", "Layout",
           "Rows", "counters_from", "find", "get", "kind_name", "kinds", "label_text",
           "layouts_from", "names", "read_counters", "register", "stat_keys", "unregister"]
