"""The echo kind's Python side (test-only, tests/kinds/echo/): its handle.  It takes no
options and writes no configuration, so it needs no pool side; its layout (code, area,
counter) is C's.  Registered by tests/test_echo_kind.py with the line a shipped kind
has in rtudp/shmring/kinds.py."""
from __future__ import annotations

from rtudp.channel import Channel
from rtudp.shmring.kinds import get


class EchoChannel(Channel):
    """An echo channel: a udp channel's handle (its kind check says echo)."""

    KIND = get("echo").code
    HANDLE_NAME = "EchoChannel"
