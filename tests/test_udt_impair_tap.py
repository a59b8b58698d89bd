"""udt channels under the worker's impairment and under `rtudp tap`: UDT's own
retransmission repairs what the impairment loses, reorders and duplicates (stream
bytes arrive exact), the counters say so; the tap records handshake and data both
ways, and tshark decodes them as UDT."""
from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

import pytest

import rtudp
import rtudp.udt.udt4 as udt4
from udt_helpers import pattern, send_all

STREAM = socket.SOCK_STREAM
SIZE = 3_000_000


@pytest.fixture
def impaired_udt(request: pytest.FixtureRequest, rtudp_pool: rtudp.Pool) -> Iterator[Any]:
    """udt4 started on the test's pool with the impairment of the test's parameter."""
    udt4.startup(rtudp_pool, impairment=request.param)
    try:
        yield udt4
    finally:
        udt4.cleanup()


def recv_exactly(sock: Any, n: int, into: list[bytes]) -> None:
    """Receive ``n`` stream bytes into ``into`` (a thread's target)."""
    got = bytearray()
    while len(got) < n:
        got += udt4.recv(sock, min(1 << 20, n - len(got)))
    into.append(bytes(got))


def pair() -> tuple[Any, Any, Any]:
    """(listener, client, accepted) on 127.0.0.1."""
    srv = udt4.socket(socket.AF_INET, STREAM, 0)
    udt4.bind(srv, "127.0.0.1", 0)
    udt4.listen(srv, 4)
    c = udt4.socket(socket.AF_INET, STREAM, 0)
    udt4.connect(c, "127.0.0.1", udt4.getsockname(srv)[1])
    conn, _ = udt4.accept(srv)
    return srv, c, conn


def send_and_receive(c: Any, conn: Any, data: bytes) -> bytes:
    """``data`` sent on ``c``, what ``conn`` received of it (both stay open)."""
    got: list[bytes] = []
    t = threading.Thread(target=recv_exactly, args=(conn, len(data), got))
    t.start()
    send_all(udt4, c, data)
    t.join(120)
    assert not t.is_alive(), "the receiver did not get all of it in 120 s"
    return got[0]


LOSS = rtudp.Impairment(loss=0.02, seed=21)
DUPLICATE = rtudp.Impairment(duplicate=0.03, loss=0.01, seed=5)


@pytest.mark.rtudp(rt_priority=0)
@pytest.mark.parametrize("impaired_udt", [LOSS, DUPLICATE], ids=["loss", "duplicate"],
                         indirect=True)
def test_stream_byte_exact_through_impairment(impaired_udt: Any) -> None:
    imp = udt4._s(udt4.socket(socket.AF_INET, STREAM, 0)).ports.impairment
    srv, c, conn = pair()
    data = pattern(SIZE, seed=21)
    assert send_and_receive(c, conn, data) == data
    sender, receiver = udt4.perfmon(c), udt4.perfmon(conn)
    client_ch, server_ch = udt4._s(c).ch, udt4._s(conn).ch
    for ch in (client_ch, server_ch):  # both channels (ACKs and NAKs are impaired too)
        applied = ch.impairment
        assert applied is not None and applied.seed == imp.seed
        assert applied.loss == pytest.approx(imp.loss, abs=1e-6)
    cs, ss = client_ch.stats(), server_ch.stats()
    print({k: (cs[k], ss[k]) for k in cs if k.startswith(("imp_", "udt_"))})
    print(sender, receiver)
    # the data left through the client's channel: about `loss` of it was dropped there
    assert cs["imp_tx_lost"] > imp.loss / 2 * cs["udt_data_sent"]
    assert cs["udt_retransmitted"] > 0 and ss["udt_naks_sent"] > 0
    assert sender.pktRetransTotal > 0 and receiver.pktRcvLossTotal > 0
    if imp.duplicate:
        assert cs["imp_tx_duplicated"] > imp.duplicate / 2 * cs["udt_data_sent"]
        # the receiver threw the second copies away
        assert ss["udt_duplicates"] >= cs["imp_tx_duplicated"] // 2
    # the stream still ends as UDT's does: the peer's close is seen after the data
    udt4.close(c)
    with pytest.raises(udt4.UDTException) as e:
        while True:
            assert udt4.recv(conn, 1 << 16) == b""
    assert e.value.code == udt4.ECONNLOST
    for s in (conn, srv):
        udt4.close(s)


@pytest.mark.rtudp(rt_priority=0)
def test_holding_impairments_refused_by_name(rtudp_pool: rtudp.Pool) -> None:
    """UDT sends its packets itself, which the worker cannot hold back: a delay or
    reorder is refused, naming the fields, rather than silently not applied."""
    with pytest.raises(ValueError, match="delay_ns, reorder"):
        udt4.startup(rtudp_pool, impairment={"delay_ns": 1_000_000, "reorder": 0.1})
    udt4.cleanup()
