"""Fuzz targets (hypothesis), one per parser of outside input, each bounded in time
for CI (``RTUDP_FUZZ_EXAMPLES`` raises the number of examples for a longer hunt):

* ``rtudp.rtp.parse`` (RFC 3550 header, C) and ``RtpJBuf.udp_in`` (C jitter buffer):
  any bytes, random or mutated from a valid packet, give a result or RtpParseError,
  and the jitter buffer counts each unparsable datagram in ``invalid``;
* ``parse_request`` (the pool's command ring: JSON from any local process);
* ``parse_rx_record`` (RX ring records as readers see them);
* the MPSC ring consumer (C) over a data area of random bytes: records, or
  BadSegmentError/corruption counted, never a crash or a hang.
The worker's own readers of shared memory are fuzzed by
tests/test_hostile_input.py (random bytes over live rings).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtudp.rtp import RtpJBuf, RtpParseError, RtpSynth, parse
from rtudp.shmring.channel import parse_rx_record
from rtudp.shmring.errors import BadSegmentError, RtUdpError
from rtudp.shmring.mpsc import MpscRing
from rtudp.shmring._native import ffi
from rtudp.workers.commands import CommandError, parse_request

EXAMPLES = int(os.environ.get("RTUDP_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

_VALID = RtpSynth(8000, 20, ssrc=1, seq=1).next_pkt(160, 0)


@st.composite
def mutated_rtp(draw: st.DrawFn) -> bytes:
    """A valid RTP packet with bytes flipped, cut short or extended."""
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


@FUZZ
@given(st.one_of(st.binary(max_size=2048), mutated_rtp()))
def test_fuzz_rtp_parse(data: bytes) -> None:
    try:
        hdr = parse(data)
    except RtpParseError:
        return
    assert isinstance(hdr, dict) and len(data) >= 12


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=300), mutated_rtp()), max_size=40))
def test_fuzz_jitter_buffer(datagrams: list[bytes]) -> None:
    jb = RtpJBuf(20)
    bad = refused = 0
    for d in datagrams:
        try:
            parse(d)
        except RtpParseError:
            bad += 1
        try:
            jb.udp_in(d)
        except RtpParseError:
            refused += 1
    jb.flush()
    assert refused == bad and jb.stats()["invalid"] == bad


_JSON_ATOMS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=20))
_JSON = st.recursive(_JSON_ATOMS, lambda c: st.one_of(st.lists(c, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), c,
                                                                      max_size=4)), max_leaves=12)


@FUZZ
@given(st.one_of(st.binary(max_size=512),
                 _JSON.map(lambda v: __import__("json").dumps(v).encode()),
                 st.fixed_dictionaries({"id": _JSON, "pid": _JSON, "op": st.sampled_from(
                     ["open", "close", "x"]), "args": _JSON}).map(
                     lambda v: __import__("json").dumps(v).encode())))
def test_fuzz_command_requests(raw: bytes) -> None:
    try:
        req = parse_request(raw)
    except CommandError:
        return
    assert set(req) == {"id", "pid", "op", "args"} and isinstance(req["args"], dict)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_rx_records(record: bytes) -> None:
    try:
        meta, data = parse_rx_record(record)
    except BadSegmentError:
        return
    assert len(data) == len(record) - 56


@FUZZ
@given(data=st.binary(min_size=64, max_size=4096), head_words=st.binary(min_size=16,
                                                                         max_size=16))
def test_fuzz_mpsc_consumer_on_random_bytes(shm_names, data: bytes, head_words: bytes) -> None:
    with MpscRing.create(shm_names(), capacity=4096) as ring:
        ring.put(b"valid")
        base = ffi.cast("char *", ring._ring.data)
        ffi.memmove(base, data, len(data))
        r = ring._ring.ring
        r.tail = int.from_bytes(head_words[:8], "little") % (1 << 20)
        got = 0
        for _ in range(64):                   # bounded: a consumer loop never hangs
            try:
                if ring.try_get() is None:
                    break
                got += 1
            except RtUdpError:
                break
        assert got <= 4096 // 16
