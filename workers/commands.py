"""Client -> supervisor commands through the pool's control segment.

A client puts a request (a small JSON document) in the command ring (MPSC, many
clients) and reads the reply ring (broadcast) until the reply with its request id
arrives.  It makes its reply-ring reader *before* it queues the request, so the reply
cannot slip past it.  The supervisor runs one command thread (:class:`CommandServer`):
the only writer of the reply ring.

Requests: ``{"id": str, "pid": int, "op": "open" | "close" | "pause" | "resume",
"args": {...}}``: an open's args are the channel's
:class:`~rtudp.workers.channel_config.ChannelConfig` as ``to_dict()`` gives it (the
supervisor makes it again with ``from_dict``, which checks it); the others' are
``{"name": str}`` (pause/resume: ``Pool.pause_channel`` / ``resume_channel``).
Replies: ``{"id": str, "ok": true, "result": {...}}`` or
``{"id": str, "ok": false, "error": [type name, message]}``; the client raises the
same exception type for the errors it knows (ValueError, TypeError, the rtudp
errors), RtUdpError otherwise.

Everything read from the rings is checked: a request that is not valid JSON of that
shape gets an error reply (when it has an id) and a logged warning, never a crash.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from typing import Any, Callable

from ..shmring.control import ControlSegment
from ..shmring.errors import (AddressInUseError, BackPressureError, BadSegmentError,
                              ChannelNotFoundError, PoolNotRunningError, PoolRunningError,
                              RtUdpError, WorkerError)
from .channel_config import FIELDS

log = logging.getLogger("rtudp.workers")

#: the arguments an "open" request may carry (a ChannelConfig's fields)
OPEN_ARGS = frozenset(FIELDS)
OPS = ("open", "close", "pause", "resume")
#: how long a client waits for the supervisor's answer
DEFAULT_TIMEOUT_S = 10.0
MAX_ID = 64

_ERRORS: dict[str, type[BaseException]] = {
    e.__name__: e for e in (ValueError, TypeError, OSError, TimeoutError, RtUdpError,
                            AddressInUseError, BackPressureError, BadSegmentError,
                            ChannelNotFoundError, PoolNotRunningError, PoolRunningError,
                            WorkerError)
}


class CommandError(ValueError):
    """A request that is not a valid command (bad JSON, unknown op, bad arguments)."""


def parse_request(raw: bytes) -> dict[str, Any]:
    """A request from the command ring, checked: id, pid, op and args of the right types."""
    try:
        req = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"request is not UTF-8 JSON: {exc}") from None
    if not isinstance(req, dict):
        raise CommandError(f"request must be a JSON object, got {type(req).__name__}")
    rid, pid, op, args = req.get("id"), req.get("pid"), req.get("op"), req.get("args")
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID:
        raise CommandError(f"request id must be a string of 1..{MAX_ID} characters, got {rid!r}")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise CommandError(f"request pid must be a positive int, got {pid!r}")
    if op not in OPS:
        raise CommandError(f"unknown op {op!r}: one of {list(OPS)}")
    if not isinstance(args, dict):
        raise CommandError(f"request args must be a JSON object, got {args!r}")
    if op == "open":
        unknown = sorted(set(args) - OPEN_ARGS)
        if unknown:
            raise CommandError(f"open: unknown arguments {unknown}: allowed {sorted(OPEN_ARGS)}")
    if "name" not in args:
        raise CommandError(f"{op}: the channel name is missing")
    return {"id": rid, "pid": pid, "op": op, "args": args}


def _request_id(raw: bytes) -> str | None:
    """The id of a request that failed parse_request, if one can be read (to answer it)."""
    try:
        rid = json.loads(raw.decode("utf-8")).get("id")
    except Exception:  # noqa: BLE001 - anything unreadable has no id to answer
        return None
    return rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID else None


def _reply(rid: str, result: dict[str, Any] | None = None,
           error: BaseException | None = None) -> bytes:
    if error is None:
        return json.dumps({"id": rid, "ok": True, "result": result or {}}).encode()
    kind = type(error).__name__ if type(error).__name__ in _ERRORS else "RtUdpError"
    if isinstance(error, CommandError):
        kind = "ValueError"
    return json.dumps({"id": rid, "ok": False, "error": [kind, str(error)]}).encode()


#: what :meth:`CommandServer.wake` puts in the command ring: read only once the server
#: is stopping, never handled
WAKE = b"{}"


class CommandServer:
    """The supervisor's side: read requests, run them, answer on the reply ring.

    ``handlers`` maps an op to ``f(pid, args) -> result dict``; what a handler raises
    becomes the error reply.  ``idle`` looks at what the requests left behind (the
    supervisor closes channels whose client died there) and says whether anything is
    left to look at: it runs ``idle_s`` after a request (however many come), then at
    periods that double up to ``idle_max_s`` while no request comes, and not at all
    once it says nothing is left, until the next request.  So a pool nobody asks
    anything of wakes this thread for nothing (``idle_max_s``: how late a dead
    client's channels may be closed).
    """

    def __init__(self, control: ControlSegment,
                 handlers: dict[str, Callable[[int, dict[str, Any]], dict[str, Any]]],
                 idle: Callable[[], bool | None], idle_s: float,
                 idle_max_s: float | None = None) -> None:
        self.control = control
        self.handlers = handlers
        self.idle = idle
        self.idle_s = idle_s
        self.idle_max_s = idle_s if idle_max_s is None else max(idle_s, idle_max_s)
        # requests come seldom: a wait parks at once rather than spin for one
        self.control.commands.spin_ns = 0

    def handle(self, raw: bytes) -> bytes | None:
        """The reply to one request (None for garbage without an id: nobody to answer)."""
        try:
            req = parse_request(raw)
        except CommandError as exc:
            log.warning("pool %r: bad command request: %s", self.control.pool, exc)
            rid = _request_id(raw)
            return None if rid is None else _reply(rid, error=exc)
        try:
            return _reply(req["id"], self.handlers[req["op"]](req["pid"], req["args"]))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the client
            return _reply(req["id"], error=exc)

    def serve(self, stopping: threading.Event) -> None:
        """Answer requests until ``stopping`` is set (and :meth:`wake` called: a wait
        for requests may have no end)."""
        period = self.idle_s
        next_idle: float | None = time.monotonic() + period
        while not stopping.is_set():
            timeout = None if next_idle is None else max(0.0, next_idle - time.monotonic())
            try:
                raw = self.control.commands.get(timeout=timeout)
            except TimeoutError:
                raw = None
            if stopping.is_set():
                return
            if raw is not None:
                reply = self.handle(raw)
                if reply is not None:
                    self.control.replies.write(reply)
                period = self.idle_s  # a request may leave something to look at soon
                soon = time.monotonic() + period
                next_idle = soon if next_idle is None else min(next_idle, soon)
            if next_idle is None or time.monotonic() < next_idle:
                continue
            if self.idle() is False:
                next_idle = None  # nothing to look at until the next request
            else:
                period = min(period * 2, self.idle_max_s)
                next_idle = time.monotonic() + period

    def wake(self) -> None:
        """Make :meth:`serve` look at ``stopping`` now (the pool stops)."""
        try:
            self.control.commands.put(WAKE, timeout=0)
        except Exception:  # noqa: BLE001 - full (the server is awake then) or unmapped
            pass


_ids = itertools.count(1)


class CommandClient:
    """A client's side: send one request, wait for its reply (see module docstring)."""

    def __init__(self, control: ControlSegment, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.control = control
        self.timeout = timeout

    def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run ``op`` in the supervisor; its result, or the error it raised, raised here.

        PoolNotRunningError if the supervisor is gone or does not answer in time.
        """
        ctl = self.control
        rid = f"{os.getpid()}-{next(_ids)}"
        request = json.dumps({"id": rid, "pid": os.getpid(), "op": op, "args": args}).encode()
        reader = ctl.replies.reader()  # before the request: its reply cannot slip past
        try:
            ctl.commands.put(request, timeout=self.timeout)
        except BackPressureError:
            raise PoolNotRunningError(f"pool {ctl.pool!r}: the supervisor takes no commands "
                                      f"(its command ring stayed full)") from None
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not ctl.supervisor_alive():
                raise PoolNotRunningError(
                    f"pool {ctl.pool!r}: no answer from the supervisor (pid "
                    f"{ctl.supervisor_pid}) to {op!r} within {self.timeout} s")
            try:
                raw = reader.get(timeout=min(left, 0.5))
            except TimeoutError:
                continue
            reply = self._parse_reply(raw)
            if reply is None or reply["id"] != rid:
                continue  # another client's answer
            if reply["ok"]:
                result = reply.get("result")
                return result if isinstance(result, dict) else {}
            kind, message = reply["error"]
            raise _ERRORS.get(kind, RtUdpError)(message)

    @staticmethod
    def _parse_reply(raw: bytes) -> dict[str, Any] | None:
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), str):
            return None
        if not reply.get("ok"):
            err = reply.get("error")
            if not (isinstance(err, list) and len(err) == 2 and all(isinstance(e, str)
                                                                     for e in err)):
                return None
        return reply


__all__ = ["CommandClient", "CommandError", "CommandServer", "DEFAULT_TIMEOUT_S", "OPEN_ARGS",
           "parse_request"]
