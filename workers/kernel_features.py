"""Which newer kernel features this kernel lacks, and what rtudp does instead.

The engine (csrc/compat.h) calls each feature through syscall(2) and falls back where
the kernel answers ENOSYS or refuses the option; this module asks the kernel the same
questions once, so a pool can say in one warning (:class:`KernelFallbackWarning`) what
it runs without. ``RTUDP_FORCE_FALLBACK`` (comma-separated feature names) makes both
this probe and the engine take a fallback on a kernel that has the feature, which is
how the tests reach each fallback path.

SO_TXTIME and io_uring are not used by the engine, so nothing falls back from them.
"""
from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import warnings

#: feature -> what the engine does without it
FALLBACKS = {
    "pidfd_getfd": "direct sends and receives are off: every packet goes through the "
                   "worker (one more wake-up each way)",
    "udp_segment": "a batch due at once leaves as one send per datagram (no GSO)",
    "udp_gro": "each datagram is a receive of its own (no GRO coalescing)",
    "epoll_pwait2": "the worker's RX waits round up to whole milliseconds",
    "so_timestamping": "send and receive times come from the clock at the call, not the "
                       "kernel's stamps",
}

_SOL_UDP = 17
_UDP_SEGMENT = 103
_UDP_GRO = 104
_SO_TIMESTAMPING = 37
_TS_FLAGS = 0x2 | 0x8 | 0x10  # TX_SOFTWARE, RX_SOFTWARE, SOFTWARE (what the worker asks)
# the same numbers on x86_64 and aarch64 (the common table), the CPUs of the wheels
_SYS = {"pidfd_getfd": 438, "epoll_pwait2": 441}


class KernelFallbackWarning(RuntimeWarning):
    """The kernel lacks a feature rtudp uses where it can; the pool runs without it."""


def forced() -> set[str]:
    """The features ``RTUDP_FORCE_FALLBACK`` names (ValueError for an unknown one)."""
    names = {n.strip() for n in os.environ.get("RTUDP_FORCE_FALLBACK", "").split(",")}
    names.discard("")
    unknown = sorted(names - set(FALLBACKS))
    if unknown:
        raise ValueError(f"RTUDP_FORCE_FALLBACK names {', '.join(map(repr, unknown))}: "
                         f"the features are {', '.join(FALLBACKS)}")
    return names


def _syscall(name: str, *args: object) -> int:
    """0 when the kernel knows system call ``name`` (it may still refuse these args),
    else the errno of ENOSYS."""
    if os.uname().machine not in ("x86_64", "aarch64"):
        return 0  # not asked: the engine finds out itself
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(_SYS[name]), *args)
    err = ctypes.get_errno() if r < 0 else 0
    if r >= 0 and name == "pidfd_getfd":
        os.close(r)
    return errno.ENOSYS if err == errno.ENOSYS else 0


def _probe_pidfd_getfd() -> int:
    try:
        pidfd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError) as exc:
        return getattr(exc, "errno", None) or errno.ENOSYS
    try:
        return _syscall("pidfd_getfd", ctypes.c_int(pidfd), ctypes.c_int(pidfd), ctypes.c_uint(0))
    finally:
        os.close(pidfd)


def _probe_epoll_pwait2() -> int:
    ep = select.epoll()
    try:
        events = ctypes.create_string_buffer(16)
        zero = (ctypes.c_long * 2)(0, 0)
        return _syscall("epoll_pwait2", ctypes.c_int(ep.fileno()), events, ctypes.c_int(1),
                        zero, ctypes.c_void_p(None), ctypes.c_size_t(8))
    finally:
        ep.close()


def _probe_option(get: bool, level: int, option: int, value: int = 1) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            if get:
                s.getsockopt(level, option)
            else:
                s.setsockopt(level, option, value)
        except OSError as exc:
            return exc.errno or errno.ENOPROTOOPT
    return 0


def coalesce_receives(sock: socket.socket) -> None:
    """Turn UDP_GRO on for ``sock`` where the kernel has it and ``RTUDP_FORCE_FALLBACK``
    does not name it: as the worker does when it takes a channel (netio.c), so that the
    socket is as the worker serves it from before the channel is published."""
    if "udp_gro" in forced():
        return
    try:
        sock.setsockopt(_SOL_UDP, _UDP_GRO, 1)
    except OSError:
        pass  # the worker finds it off too: each datagram a receive of its own


def missing() -> dict[str, str]:
    """The features this kernel lacks (or RTUDP_FORCE_FALLBACK names): feature -> why."""
    probes = {
        "pidfd_getfd": _probe_pidfd_getfd,
        "udp_segment": lambda: _probe_option(True, _SOL_UDP, _UDP_SEGMENT),
        "udp_gro": lambda: _probe_option(False, _SOL_UDP, _UDP_GRO),
        "epoll_pwait2": _probe_epoll_pwait2,
        "so_timestamping": lambda: _probe_option(False, socket.SOL_SOCKET, _SO_TIMESTAMPING,
                                                 _TS_FLAGS),
    }
    force = forced()
    out: dict[str, str] = {}
    for name, probe in probes.items():
        if name in force:
            out[name] = "RTUDP_FORCE_FALLBACK"
        else:
            err = probe()
            if err:
                out[name] = os.strerror(err)
    return out


def warn_fallbacks(pool: str) -> dict[str, str]:
    """One :class:`KernelFallbackWarning` naming each missing feature and its fallback
    (none when the kernel has them all); returns :func:`missing`'s answer."""
    gone = missing()
    if gone:
        lines = "; ".join(f"{n} unavailable ({why}): {FALLBACKS[n]}" for n, why in gone.items())
        warnings.warn(f"pool {pool!r} runs with fallbacks: {lines}", KernelFallbackWarning,
                      stacklevel=3)
    return gone


__all__ = ["FALLBACKS", "KernelFallbackWarning", "coalesce_receives", "forced", "missing",
           "warn_fallbacks"]
