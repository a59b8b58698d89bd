"""The supervisor's end of one worker's command socket (AF_UNIX, SOCK_SEQPACKET).

One ``struct rtudp_cmd`` per message (RTUDP_CMD_ADD carries the channel's socket
as SCM_RIGHTS); the worker answers each with a ``struct rtudp_reply`` of the same
op and slot.  After sending, the supervisor rings the worker's doorbell, since the
worker may be parked on it.  One command at a time per worker (a lock).
"""
from __future__ import annotations

import select
import socket
import threading
import time
from typing import Callable

from ..shmring._native import ffi, lib
from ..shmring.errors import WorkerError

CMD_SIZE = ffi.sizeof("struct rtudp_cmd")
REPLY_SIZE = ffi.sizeof("struct rtudp_reply")
OP_NAMES = {lib.RTUDP_CMD_ADD: "ADD", lib.RTUDP_CMD_ADD_STANDBY: "ADD_STANDBY",
            lib.RTUDP_CMD_REMOVE: "REMOVE", lib.RTUDP_CMD_STOP: "STOP"}
DEFAULT_TIMEOUT = 5.0


# commands sent ahead of their replies (Link.commands): few enough that neither side's
# socket buffer fills, so the worker never blocks on a reply we are not reading yet
PIPELINE = 32
#: how long a wait for a reply looks without sleeping (ns): about what a worker takes
#: to add a channel once its handle is made (commands' ``meanwhile``)
REPLY_SPIN_NS = 150_000
#: how long close waits for a thread in ``commands`` to let go of the link (s): it
#: wakes at once with EOF, unless it is in its caller's ``meanwhile``
CLOSE_WAIT_S = 1.0


def _what(op: int, slot: int, name: str) -> str:
    return f"{OP_NAMES.get(op, op)} of channel {name!r} (slot {slot})"


class WorkerGone(WorkerError):
    """The worker's command socket closed (the worker exited) before it answered."""


def encode_cmd(op: int, slot: int, name: str) -> bytes:
    """A ``struct rtudp_cmd`` as bytes."""
    cmd = ffi.new("struct rtudp_cmd *")
    cmd.op, cmd.slot = op, slot
    raw = name.encode()
    if len(raw) >= ffi.sizeof(cmd.name):
        raise ValueError(f"channel name {name!r} is too long for a command")
    ffi.memmove(cmd.name, raw, len(raw))
    return bytes(ffi.buffer(cmd))


def decode_reply(data: bytes) -> tuple[int, int, int, str]:
    """(op, slot, status, msg) out of a ``struct rtudp_reply``."""
    if len(data) != REPLY_SIZE:
        raise WorkerError(f"worker reply of {len(data)} bytes, expected {REPLY_SIZE}")
    rep = ffi.cast("struct rtudp_reply *", ffi.from_buffer(data))
    msg = ffi.string(rep.msg, ffi.sizeof(rep.msg)).decode("utf-8", "replace")
    return int(rep.op), int(rep.slot), int(rep.status), msg


class WorkerLink:
    """Our end of a worker's command socket, plus the end the worker inherits."""

    def __init__(self, index: int, ring_bell: Callable[[], None]) -> None:
        self.index = index
        self._ring_bell = ring_bell
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lock = threading.Lock()

    def child_fd(self) -> int:
        """The fd number to pass to the worker (``--cmd-fd``; inherit it with pass_fds)."""
        return self.theirs.fileno()

    def spawned(self) -> None:
        """The worker has its copy: close ours, so its exit shows as EOF here."""
        self.theirs.close()

    def close(self) -> None:
        """Close both ends (idempotent): the worker sees EOF and exits.  A thread in
        :meth:`commands` meanwhile gets WorkerGone: the shutdown wakes it with EOF, and
        the socket is closed once it let go of the link (or after CLOSE_WAIT_S), never
        under it, where its number, reused by a new socket, would leave it waiting on
        that one."""
        try:
            self.ours.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already, or its peer gone
        held = self.lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self.ours.close()
            self.theirs.close()
        finally:
            if held:
                self.lock.release()

    def command(self, op: int, slot: int, name: str, fds: list[int] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        """Send a command (with ``fds``, passed as SCM_RIGHTS), ring the bell, wait for
        its reply: (status, msg).

        WorkerGone if the worker exits first, TimeoutError if it does not answer.
        """
        return self.commands([(op, slot, name, fds)], timeout)[0]

    def commands(self, cmds: list[tuple[int, int, str, list[int] | None]],
                 timeout: float = DEFAULT_TIMEOUT,
                 meanwhile: Callable[[], None] | None = None) -> list[tuple[int, str]]:
        """Send commands (op, slot, name, fds) and wait for each one's reply, in order:
        their (status, msg).  Up to PIPELINE of them are in flight at once, so a batch
        costs the worker's work, not one round trip each; ``timeout`` is per reply.
        ``meanwhile`` (which must not raise) runs once, when the last of them is sent,
        before the replies still due are waited for: the caller's own work overlaps
        the worker's, which has all of its commands by then.

        WorkerGone if the worker exits first, TimeoutError if it does not answer.
        """
        replies: list[tuple[int, str]] = []
        with self.lock:
            sent = 0
            while len(replies) < len(cmds):
                # refilled once half the window is answered, with one ring: the worker
                # reads every command waiting at a wake-up, and a ring per command
                # costs a wake-up (a cross-CPU interrupt) each
                if sent < len(cmds) and sent - len(replies) <= PIPELINE // 2:
                    while sent < len(cmds) and sent - len(replies) < PIPELINE:
                        self._send(*cmds[sent])
                        sent += 1
                    self._ring_bell()
                    if sent == len(cmds) and meanwhile is not None:
                        meanwhile()
                        meanwhile = None
                replies.append(self._reply(*cmds[len(replies)][:3], timeout))
        return replies

    def _send(self, op: int, slot: int, name: str, fds: list[int] | None) -> None:
        data = encode_cmd(op, slot, name)
        try:
            if not fds:
                self.ours.send(data)
            else:
                socket.send_fds(self.ours, [data], fds)
        except OSError as exc:
            raise WorkerGone(f"worker {self.index} is gone: cannot send "
                             f"{_what(op, slot, name)}: {exc}") from None

    def _reply(self, op: int, slot: int, name: str, timeout: float) -> tuple[int, str]:
        what = _what(op, slot, name)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"worker {self.index} did not answer {what} within "
                                   f"{timeout} s")
            try:
                reply = self._recv_reply(left)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise WorkerGone(f"worker {self.index} is gone while doing {what}: "
                                 f"{exc}") from None
            if not reply:
                raise WorkerGone(f"worker {self.index} exited before answering {what}")
            r_op, r_slot, status, msg = decode_reply(reply)
            if (r_op, r_slot) == (op, slot):
                return status, msg
            # a late answer to an earlier command that timed out: skip it

    def _recv_reply(self, left: float) -> bytes:
        """One reply datagram, looked for without sleeping for REPLY_SPIN_NS first: a
        reply the worker is about to send is then read without a sleep and a cross-CPU
        wake-up, which on a virtual machine cost as much as the wait itself.
        BlockingIOError when none came within ``left`` s."""
        until = time.monotonic_ns() + REPLY_SPIN_NS
        while True:
            try:
                return self.ours.recv(REPLY_SIZE + 1, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.monotonic_ns() >= until:
                    break
        # poll, not select: a pool with many channels has fds past FD_SETSIZE
        poller = select.poll()
        poller.register(self.ours, select.POLLIN)
        if not poller.poll(max(1, int(left * 1000))):
            raise BlockingIOError
        return self.ours.recv(REPLY_SIZE + 1, socket.MSG_DONTWAIT)

    def send_stop(self) -> None:
        """Ask the worker to exit (no wait for the reply); ignores a closed socket."""
        try:
            self.ours.send(encode_cmd(lib.RTUDP_CMD_STOP, 0, ""))
        except OSError:
            pass
        self._ring_bell()


__all__ = ["WorkerGone", "WorkerLink", "decode_reply", "encode_cmd"]
