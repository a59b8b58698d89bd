"""``Channel.send_to``'s socket: this process's duplicate of the channel socket.

The supervisor holds each channel's socket; a client takes its own duplicate with
``pidfd_getfd`` (as direct sends do, csrc/direct_send.c), which needs ptrace access
to the supervisor: the same user, or CAP_SYS_PTRACE.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
from typing import Any

from rtudp.shmring._native import ffi

#: pidfd_getfd's number: the same on every architecture (the unified syscall table)
SYS_PIDFD_GETFD = 438

_libc = ctypes.CDLL(None, use_errno=True)


def duplicate_socket(pid: int, fd: int, channel: str) -> socket.socket:
    """Our duplicate of fd ``fd`` of process ``pid``, a UDP socket (channel ``channel``
    names it in errors)."""
    if fd < 0:
        raise ValueError(f"channel {channel!r}: its supervisor published no socket")
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        raise OSError(exc.errno, f"channel {channel!r}: cannot reach its supervisor (pid "
                                 f"{pid}): {exc.strerror}") from None
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        err = ctypes.get_errno()
    finally:
        os.close(pidfd)
    if dup < 0:
        hint = (" (it needs ptrace access to the supervisor: the same user, or "
                "CAP_SYS_PTRACE)" if err in (errno.EPERM, errno.EACCES) else "")
        raise OSError(err, f"channel {channel!r}: cannot take its socket from the supervisor "
                           f"(pid {pid}): {os.strerror(err)}{hint}")
    sock = socket.socket(fileno=dup)
    if sock.type != socket.SOCK_DGRAM:
        sock.close()
        raise OSError(errno.ENOTSOCK, f"channel {channel!r}: fd {fd} of pid {pid} is not a "
                                      f"UDP socket")
    # (its blocking mode is left alone: it is the file the worker sends on too)
    return sock


def count_direct_send(handle: Any, block: Any, nbytes: int) -> None:
    """Count one datagram of ``nbytes`` sent on the socket itself in the channel block's
    direct line (stats() adds it to tx_packets and tx_bytes)."""
    handle._count_direct(int(ffi.cast("uintptr_t", ffi.addressof(block, "direct"))), nbytes)


__all__ = ["count_direct_send", "duplicate_socket"]
