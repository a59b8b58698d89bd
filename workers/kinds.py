"""Channel kinds as the supervisor knows them: code, options, the kind area.

Each kind the worker serves (``csrc/proto/<name>.c``) has a :class:`KindSpec` here:
its ``RTUDP_KIND_*`` code, how to check the options a user passes to
``open_channel(..., kind=, options=)``, how many bytes of kind area its channel
segment needs, and how to write the area's configuration before the worker is told
of the channel.  A new kind adds its module and one entry to :data:`KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from rtudp.shmring._native import lib

from . import rtp_kind
from . import netflux_kind

Options = dict[str, Any]


def _no_options(kind: str) -> Callable[[Mapping[str, Any]], Options]:
    def check(options: Mapping[str, Any]) -> Options:
        if options:
            raise ValueError(f"a {kind} channel takes no options, got {sorted(options)}")
        return {}
    return check


@dataclass(frozen=True)
class KindSpec:
    """What the supervisor needs to open a channel of one kind."""

    name: str
    code: int
    #: options as the user gave them -> checked, complete options (ValueError/TypeError
    #: naming the bad one)
    check: Callable[[Mapping[str, Any]], Options]
    #: checked options -> bytes of kind area the segment needs
    area_bytes: Callable[[Options], int] = field(default=lambda _o: 0)
    #: (area as ``void *``, its size, checked options, direction) -> None: write the
    #: area's configuration; runs before the worker sees the channel
    configure: Callable[[Any, int, Options, int], None] | None = None


UDP = KindSpec("udp", lib.RTUDP_KIND_UDP, _no_options("udp"))
RTP = KindSpec("rtp", lib.RTUDP_KIND_RTP, rtp_kind.check_options, rtp_kind.area_bytes,
               rtp_kind.configure)
NETFLUX = KindSpec("netflux", lib.RTUDP_KIND_NETFLUX, netflux_kind.check_options,
                   netflux_kind.area_bytes, netflux_kind.configure)

#: kind name -> spec, the kinds a pool can open
KINDS: dict[str, KindSpec] = {UDP.name: UDP, RTP.name: RTP, NETFLUX.name: NETFLUX}

#: kind code -> name (for messages and stats)
KIND_NAMES: dict[int, str] = {lib.RTUDP_KIND_UDP: "udp", lib.RTUDP_KIND_RTP: "rtp",
                              lib.RTUDP_KIND_NETFLUX: "netflux", lib.RTUDP_KIND_UDT: "udt"}


def kind_spec(kind: object) -> KindSpec:
    """The spec of kind name ``kind`` (ValueError naming it and the known ones)."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"channel kind {kind!r} is not supported: use one of {sorted(KINDS)}")
    return KINDS[kind]


def kind_name(code: int) -> str:
    """A kind code as its name (``"kind 9"`` for one we do not know)."""
    return KIND_NAMES.get(code, f"kind {code}")


__all__ = ["KINDS", "KindSpec", "Options", "kind_name", "kind_spec"]
