"""Which async wrapper rtudp.aio gives a handle comes from the kind registry: a kind's
entry names its wrapper (``aio=``), a kind whose handle is an rtudp.Channel and whose
entry names none gets the generic AsyncChannel, and rtudp.aio itself names no kind.

No worker runs here: the lookup needs only the handle's class (handles are made with
``__new__``, unattached), so these hold wherever rtudp imports.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Iterator

import pytest

import rtudp.aio as aio
from rtudp import Channel
from rtudp.handles import KindHandle
from rtudp.netflux.channel import NetfluxChannel
from rtudp.rtp.channel import RtpChannel
from rtudp.shmring import kinds
from rtudp.udt.channel import UdtChannel

#: the test kind's name (registered by the fixture for one test)
TEST_KIND = "aiolookup"


def unattached(cls: type) -> object:
    """An instance of handle class ``cls`` without a channel (the lookup reads its class)."""
    return cls.__new__(cls)


class OwnWrapper:
    """The wrapper the test kind's entry names (records what it wrapped)."""

    def __init__(self, handle: object) -> None:
        self.handle = handle


@pytest.fixture
def test_kind() -> Iterator[int]:
    """A free kind code; the fixture unregisters the test kind again."""
    code = max(k.code for k in kinds.kinds()) + 100
    yield code
    kinds.unregister(TEST_KIND)


def register_test_kind(code: int, handle: type, wrapper: type | str | None) -> None:
    layout = kinds.Layout(name=TEST_KIND, code=code, prefix="al_", area_size=0)
    kinds.register(TEST_KIND, handle=handle, layout=layout, aio=wrapper)


def test_shipped_kinds_get_the_wrapper_their_entry_names() -> None:
    from rtudp.netflux.aio import AsyncNetfluxChannel

    assert kinds.get("netflux").aio_class() is AsyncNetfluxChannel
    assert aio.wrapper_for(unattached(NetfluxChannel)) is AsyncNetfluxChannel
    # the entries of udp and rtp name no wrapper class: their handles are Channels
    for name, handle in (("udp", Channel), ("rtp", RtpChannel)):
        assert kinds.get(name).aio_class() is None
        assert aio.wrapper_for(unattached(handle)) is aio.AsyncChannel
    # udt's entry names a module (its sockets' wrappers), no class for the handle
    assert kinds.get("udt").aio_class() is None
    with pytest.raises(TypeError, match=r"udt channel handles \(UdtChannel\).*rtudp\.aio\.udt"):
        aio.wrapper_for(unattached(UdtChannel))


def test_a_kind_gets_what_its_entry_names(test_kind: int) -> None:
    class TestChannel(Channel):
        KIND = test_kind

    register_test_kind(test_kind, TestChannel, OwnWrapper)
    handle = unattached(TestChannel)
    assert aio.wrapper_for(handle) is OwnWrapper  # the entry's, though it is a Channel
    wrapped = aio.wrap(handle)
    assert isinstance(wrapped, OwnWrapper) and wrapped.handle is handle
    assert aio.OwnWrapper is OwnWrapper  # the wrapper a kind names is rtudp.aio's too
    assert aio.aiolookup is sys.modules[__name__]  # its asyncio module: rtudp.aio.<kind>


def test_an_entry_without_wrapper_gets_the_generic_one(test_kind: int) -> None:
    class TestChannel(Channel):
        KIND = test_kind

    register_test_kind(test_kind, TestChannel, None)
    assert aio.wrapper_for(unattached(TestChannel)) is aio.AsyncChannel
    with pytest.raises(AttributeError, match="aiolookup"):
        aio.aiolookup  # noqa: B018 - no asyncio side: no such attribute


def test_a_kind_handle_without_wrapper_is_refused_by_kind_name(test_kind: int) -> None:
    class TestHandle(KindHandle):
        KIND = test_kind

    register_test_kind(test_kind, TestHandle, None)
    with pytest.raises(TypeError, match=rf"no async wrapper for {TEST_KIND} channel handles "
                                        r"\(TestHandle\)"):
        aio.wrap(unattached(TestHandle))
    with pytest.raises(TypeError, match=r"AsyncChannel wraps an rtudp\.Channel, not "
                                        r"TestHandle$"):
        aio.AsyncChannel(unattached(TestHandle))


def test_asyncchannel_points_to_the_kinds_wrapper(test_kind: int) -> None:
    class TestHandle(KindHandle):
        KIND = test_kind

    register_test_kind(test_kind, TestHandle, f"{__name__}:OwnWrapper")
    with pytest.raises(TypeError, match=rf"a {TEST_KIND} channel handle: rtudp\.aio\.wrap "
                                        r"gives it OwnWrapper"):
        aio.AsyncChannel(unattached(TestHandle))
    with pytest.raises(TypeError, match="netflux channel handle: .* AsyncNetfluxChannel"):
        aio.AsyncChannel(unattached(NetfluxChannel))


def test_register_is_checked_before_the_entries() -> None:
    class Special(RtpChannel):
        pass

    aio.register(Special, OwnWrapper)
    try:
        assert aio.wrapper_for(unattached(Special)) is OwnWrapper
        assert aio.wrapper_for(unattached(RtpChannel)) is aio.AsyncChannel
    finally:
        aio._WRAPPERS.remove((Special, OwnWrapper))


def test_unknown_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="no async wrapper for bytes objects"):
        aio.wrap(b"x")
    with pytest.raises(AttributeError, match="NoSuchWrapper"):
        aio.NoSuchWrapper  # noqa: B018


def test_aio_names_no_kind() -> None:
    """rtudp.aio's source names no kind rtudp ships: the kinds come from the registry."""
    source = pathlib.Path(aio.__file__).read_text().lower().replace("rtudp", "")
    named = [name for name in kinds.names() if name in source]
    assert not named, f"api/aio.py names the kind(s) {named}"


def test_kinds_asyncio_sides_load_when_first_used() -> None:
    """Importing rtudp.aio imports no kind's asyncio module; rtudp.aio.<kind>,
    rtudp.aio.<wrapper class> and wrapping a kind's other objects (udt's sockets)
    import them, as the entries name them."""
    script = """
import sys
import rtudp.aio as aio
assert not [m for m in sys.modules if m.endswith('.aio') and m != 'rtudp.aio'], sys.modules
from rtudp.aio import AsyncNetfluxChannel
import rtudp.netflux.aio
assert AsyncNetfluxChannel is rtudp.netflux.aio.AsyncNetfluxChannel
assert aio.netflux is rtudp.netflux.aio
assert 'rtudp.udt.aio' not in sys.modules
from rtudp.udt import pyudt
sock = pyudt.UdtSocket()
try:
    wrapped = aio.wrap(sock)
finally:
    sock.close()
from rtudp.udt.aio import AsyncUdtSocket
assert type(wrapped) is AsyncUdtSocket and aio.udt is sys.modules['rtudp.udt.aio']
assert callable(aio.udt.socket)
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
