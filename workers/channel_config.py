"""A channel's open parameters, defined once: :class:`ChannelConfig`.

``Pool.open_channel``, ``PoolClient.open_channel``, ``rtudp.open_channel`` and the
command ring all take these parameters and nothing else.  A ``ChannelConfig`` is
checked when it is made (bad values raise ValueError/TypeError naming the value, the
kind's own options are checked by the kind's hook in :mod:`rtudp.workers.kinds`), and
it crosses the command ring as it is: :meth:`ChannelConfig.to_dict` in the client's
request, :meth:`ChannelConfig.from_dict` in the supervisor (which checks it again:
anything read from shared memory is input).

What only the pool can check (a name already open, a CPU the pool has, an address
that can be bound) is checked when the pool opens the channel.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import KW_ONLY, dataclass, fields
from types import MappingProxyType
from typing import Any, Callable, Mapping, TypeVar

from ..shmring.channel import DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM, ring_capacities
from ..shmring.impairment import Impairment
from ..shmring.segment import validate_name
from .kinds import kind_spec
from .sockets import check_address

#: the most packets a channel's rings may be sized for
MAX_CAPACITY = 1 << 20

HostPort = tuple[str, int]
F = TypeVar("F", bound=Callable[..., Any])


def check_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``low..high``, else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}: {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what}={value!r} is out of range {low}..{high}")
    return value


#: the most packets a second a channel may declare (``ChannelConfig.packet_rate``)
MAX_PACKET_RATE = 10_000_000


def check_packet_rate(value: object, what: str = "packet_rate") -> float | None:
    """A declared packet rate: None, or a finite number of packets a second in
    0..MAX_PACKET_RATE (TypeError/ValueError naming ``what`` and the value)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of packets a second or None, not "
                        f"{type(value).__name__}: {value!r}")
    if not 0 <= value <= MAX_PACKET_RATE:  # NaN fails both comparisons
        raise ValueError(f"{what}={value!r} is out of range 0..{MAX_PACKET_RATE} "
                         f"packets a second")
    return float(value)


#: the names a direction may be given by, with RtUDP's numbers (0, 1, 2) for them
DIRECTIONS = {"tx": 0, "rx": 1, "both": 2}


def check_direction(value: object, what: str = "direction") -> int:
    """A channel's direction as its number: 0/"tx" send only, 1/"rx" receive only,
    2/"both"; ValueError/TypeError naming ``what`` and the value."""
    if isinstance(value, str):
        if value not in DIRECTIONS:
            raise ValueError(f"{what}={value!r} is not a direction: use \"tx\" (or 0, send "
                             f"only), \"rx\" (1, receive only) or \"both\" (2)")
        return DIRECTIONS[value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be \"tx\", \"rx\", \"both\" or 0, 1, 2, not "
                        f"{type(value).__name__}: {value!r}")
    if value not in DIRECTIONS.values():
        raise ValueError(f"{what}={value!r} is out of range 0..2: use \"tx\" (or 0, send "
                         f"only), \"rx\" (1, receive only) or \"both\" (2)")
    return value


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {value!r}")
    return value


def _address_from_json(value: object, what: str) -> HostPort | None:
    """A JSON [host, port] back into the (host, port) tuple a config holds."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{what} must be [host, port] or null, got {value!r}")
    return (value[0], value[1])


@dataclass(frozen=True)
class ChannelConfig:
    """How to open one channel (checked when made; immutable).

    ``name``: the channel's name (``[A-Za-z0-9_.-]{1,48}``).  ``local``: the (host,
    port) to bind (port 0: any; a multicast group is joined).  ``remote``: the (host,
    port) sends go to, or None.  ``direction``: ``"tx"`` (0) send only, ``"rx"`` (1)
    receive only, ``"both"`` (2); a name given is kept as its number.
    ``capacity`` packets of ``max_datagram`` bytes size the TX and RX rings (up to 8
    and 64 MiB).  ``cpu``: the CPU of the worker to serve it (None: the least loaded).
    ``hw_timestamps``: ask the NIC for receive stamps.  ``kind``: the channel kind
    (:mod:`rtudp.workers.kinds`); ``options`` its own options, checked and completed
    by the kind (read-only afterwards).  ``multicast_ttl`` / ``multicast_loop``: hops
    and loopback of what is sent to a multicast ``remote``.  ``impairment``: an
    :class:`rtudp.Impairment` (or a dict of its fields) the worker applies from the
    first datagram on (``Channel.set_impairment`` changes it later).  ``rx_capacity``:
    packets the RX ring and the socket's receive buffer are sized for, when the receive
    side needs another size than the send side (None: ``capacity``).  ``packet_rate``:
    the packets a second the channel will carry, sent and received together; a packed
    pool places the channel by it before its first packet, as it does a paced rtp
    stream or a Netflux channel by what their options declare (None: what the kind
    declares, nothing for udp and UDT).
    """

    name: str
    local: HostPort = ("127.0.0.1", 0)
    remote: HostPort | None = None
    direction: int | str = 2
    capacity: int = 1024
    max_datagram: int = DEFAULT_MAX_DATAGRAM
    cpu: int | None = None
    hw_timestamps: bool = False
    kind: str = "udp"
    _: KW_ONLY
    multicast_ttl: int = 1
    multicast_loop: bool = True
    options: Mapping[str, Any] | None = dataclasses.field(default=None, hash=False)
    impairment: Impairment | None = None
    rx_capacity: int | None = None
    packet_rate: float | None = None

    def __post_init__(self) -> None:
        validate_name(self.name, "channel name")
        spec = kind_spec(self.kind)
        options = {} if self.options is None else self.options
        if not isinstance(options, Mapping):
            raise TypeError(f"options must be a mapping of {self.kind} channel options, not "
                            f"{options!r}")
        object.__setattr__(self, "options", MappingProxyType(dict(spec.check(options))))
        object.__setattr__(self, "direction", check_direction(self.direction))
        check_int(self.capacity, "capacity", 1, MAX_CAPACITY)
        if self.rx_capacity is not None:
            check_int(self.rx_capacity, "rx_capacity", 1, MAX_CAPACITY)
        check_int(self.max_datagram, "max_datagram", 1, MAX_DATAGRAM)
        _check_bool(self.hw_timestamps, "hw_timestamps")
        object.__setattr__(self, "packet_rate", check_packet_rate(self.packet_rate))
        check_int(self.multicast_ttl, "multicast_ttl", 0, 255)
        _check_bool(self.multicast_loop, "multicast_loop")
        if self.cpu is not None and (isinstance(self.cpu, bool) or not isinstance(self.cpu, int)):
            raise TypeError(f"cpu must be an int or None, not {type(self.cpu).__name__}: "
                            f"{self.cpu!r}")
        check_address(self.local, "local", True)
        if self.remote is not None:
            check_address(self.remote, "remote", False)
        imp = Impairment.of(self.impairment)
        object.__setattr__(self, "impairment", imp)
        if imp is not None and imp.direction != "rx":
            tx_ring, _ = ring_capacities(self.capacity, self.max_datagram, self.direction)
            imp.check_fits(tx_ring, f"channel {self.name!r} (capacity={self.capacity}, "
                                    f"max_datagram={self.max_datagram})")

    @classmethod
    def of(cls, *args: Any, **params: Any) -> "ChannelConfig":
        """``open_channel``'s arguments as a config: the fields themselves (positional as
        in the class, ``multicast_ttl``/``multicast_loop``/``options`` by keyword), or a
        ``ChannelConfig``, with any keyword given replacing its field."""
        if args and isinstance(args[0], ChannelConfig):
            if len(args) > 1:
                raise TypeError(f"open_channel takes a ChannelConfig alone or with keywords, "
                                f"got {len(args) - 1} more positional argument(s)")
            return dataclasses.replace(args[0], **params) if params else args[0]
        return cls(*args, **params)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (options as a plain dict; JSON makes the addresses
        [host, port]): what a client sends the supervisor to open this channel.  A
        field left at its default of None is left out, as :meth:`from_dict` reads it:
        a supervisor of an earlier version, which does not know a field added since,
        still opens a channel that does not use it."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if not (f.default is None and getattr(self, f.name) is None)}
        out["options"] = dict(self.options or {})
        if self.impairment is not None:
            out["impairment"] = self.impairment.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChannelConfig":
        """The config :meth:`to_dict` gave, after a trip through JSON, checked again
        (ValueError for an unknown field or an address that is not [host, port])."""
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown channel parameters {unknown}: allowed {sorted(FIELDS)}")
        args = dict(data)
        for key in ("local", "remote"):
            if key in args:
                args[key] = _address_from_json(args[key], key)
        return cls(**args)


#: the names of a ChannelConfig's fields (what an "open" request may carry)
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ChannelConfig))


def takes_channel_config(method: F) -> F:
    """Give ``method(self, *args, **params)`` ChannelConfig's parameters as its
    signature (what help() and editors show), for the open_channel methods that pass
    their arguments to :meth:`ChannelConfig.of`."""
    params = list(inspect.signature(ChannelConfig).parameters.values())
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = inspect.signature(method).replace(  # type: ignore[attr-defined]
        parameters=[self_param, *params])
    return method


__all__ = ["DIRECTIONS", "FIELDS", "MAX_CAPACITY", "MAX_PACKET_RATE", "ChannelConfig",
           "check_direction", "check_int", "check_packet_rate", "takes_channel_config"]
