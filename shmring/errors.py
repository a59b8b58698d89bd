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
