"""Probes of what this machine offers, asked of the kernel itself, never of rtudp.

A test skips only when a probe here (or a tool, package or privilege check like it)
says the machine lacks something; what rtudp reports about itself is what the tests
check, so it never decides a skip.  Each probe returns None when the machine has the
capability, else the reason to skip with.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

SO_TIMESTAMPING = 37
SCM_TS_OPT_ID = 81  # Linux >= 6.13
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
SYS_pidfd_getfd = 438  # x86_64 and the generic table alike
_NO_SUCH_FD = 1 << 20  # above any fd limit: a permitted call fails with EBADF


def tx_key_cmsg_missing() -> str | None:
    """Why this kernel takes no TX-stamp key per send (SCM_TS_OPT_ID), or None.

    A UDP socket on 127.0.0.1 sends itself one empty datagram with the cmsg; a kernel
    without it refuses the cmsg with EINVAL."""
    flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, flags)
        try:
            s.sendmsg([b""], [(socket.SOL_SOCKET, SCM_TS_OPT_ID, struct.pack("I", 0))],
                      0, s.getsockname())
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            return (f"this kernel ({os.uname().release}) refuses SCM_TS_OPT_ID (Linux >= "
                    f"6.13): no TX-stamp key per send")
    return None


def pidfd_getfd_refused(pid: int) -> str | None:
    """Why this process may not duplicate a socket of process ``pid`` with
    ``pidfd_getfd`` (no such system call, seccomp, ptrace policy), or None."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        return f"pidfd_open({pid}) is refused here: {exc}"
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        rc = libc.syscall(SYS_pidfd_getfd, pidfd, _NO_SUCH_FD, 0)
        err = ctypes.get_errno()
    finally:
        os.close(pidfd)
    if rc >= 0:  # pragma: no cover - no process has that many fds
        os.close(rc)
        return None
    if err == errno.EBADF:  # permitted; the fd just does not exist
        return None
    return f"pidfd_getfd on pid {pid} is refused here: {os.strerror(err)}"


def direct_send_missing(supervisor_pid: int) -> str | None:
    """Why this machine cannot give a handle direct sends, or None (then it must)."""
    return tx_key_cmsg_missing() or pidfd_getfd_refused(supervisor_pid)


def direct_recv_missing(supervisor_pid: int) -> str | None:
    """Why this machine cannot give a reader direct receive, or None (then it must)."""
    return pidfd_getfd_refused(supervisor_pid)
