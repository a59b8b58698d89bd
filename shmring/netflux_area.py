"""A netflux channel's kind area (``struct rtudp_nf_area``, csrc/proto/netflux_shm.h),
checked, for the netflux handle.  Its counters are described in C next to the struct
(RTUDP_NF_AREA_COUNTERS) and read like every kind's (:mod:`rtudp.shmring.kinds`)."""
from __future__ import annotations

from typing import Any

from ._native import ffi, lib
from .errors import BadSegmentError
from .kinds import get

#: link state (``rx.link``) -> name, as the area's ``link`` counter describes it
LINK_NAMES = dict(enumerate(get("netflux").layout.counter("link").values))


def nf_area(area: Any, area_bytes: int, where: str) -> Any:
    """``area`` as a checked ``struct rtudp_nf_area *`` (BadSegmentError naming ``where``)."""
    a = ffi.cast("struct rtudp_nf_area *", area)
    check = ffi.new("struct rtudp_check *")
    if lib.rtudp_nf_check_area(a, area_bytes, check) != lib.RTUDP_OK:
        raise BadSegmentError(f"{where}: {ffi.string(check.msg).decode(errors='replace')}")
    return a


__all__ = ["LINK_NAMES", "nf_area"]
