"""The exceptions of rtudp.

They live in the lowest layer so every layer can raise them; ``rtudp`` re-exports
them, and users catch ``rtudp.RtUdpError`` for all of them.
"""
from __future__ import annotations


class RtUdpError(Exception):
    """Base class of every rtudp error."""


class BackPressureError(RtUdpError):
    """A ring stayed full until the timeout: the record was not queued.

    ``sent`` says how many records of a batch did go in before it.
    """

    def __init__(self, message: str, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


class BadSegmentError(RtUdpError):
    """A shared-memory segment failed validation (wrong magic, version, size...)."""


class SegmentNotFoundError(RtUdpError, FileNotFoundError):
    """No shared-memory segment of that name exists."""


class ClaimExpiredError(RtUdpError):
    """The consumer turned this claim into padding (it was open longer than the unblock
    timeout): the record was not delivered."""


class ChannelNotFoundError(RtUdpError, LookupError):
    """No open channel of that name in the pool's channel table."""


class PoolNotRunningError(RtUdpError):
    """The pool has no control segment, or its supervisor is gone."""


class ChannelClosedError(RtUdpError):
    """The channel was closed (here, or by its pool from elsewhere): nothing sent on
    it can leave, nothing more arrives."""


class PoolRunningError(RtUdpError):
    """A live supervisor already runs a pool of that name: it is left untouched."""


class WorkerError(RtUdpError):
    """A worker did not start, or did not answer a command as it should."""


class AddressInUseError(RtUdpError, OSError):
    """The channel's local address is already bound by another socket."""
