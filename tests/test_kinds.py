"""The kind registry: csrc/proto/kinds.def, the cffi extension and rtudp.shmring.kinds
agree; every counter description is complete and reads what the struct holds; the
stats() keys are the ones the hand-written readers gave before (golden lists)."""
from __future__ import annotations

import re
import sys

import pytest

from rtudp.shmring import kinds
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.channel import block_counters, block_histograms
from rtudp.shmring.kinds import COUNTER_GROUPS, read_counters
from rtudp.tools.metrics import METRIC_GROUPS, metric_name

from kind_helpers import ROOT

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _kinds_def() -> list[dict]:
    sys.path.insert(0, str(ROOT / "csrc"))
    try:
        import build_ffi
    finally:
        sys.path.remove(str(ROOT / "csrc"))
    return build_ffi.kinds()


def test_kinds_def_extension_and_registry_agree() -> None:
    rows = _kinds_def()
    assert [(k.name, k.code, k.layout.prefix) for k in kinds.kinds()] == \
        [(r["name"], r["code"], r["prefix"]) for r in rows]
    assert sorted(kinds.C_LAYOUTS) == sorted(r["name"] for r in rows)
    for r in rows:
        assert getattr(lib, f"RTUDP_KIND_{r['NAME']}") == r["code"]
        assert kinds.kind_name(r["code"]) == r["name"]
    assert len({r["code"] for r in rows}) == len(rows)
    assert kinds.kind_name(99) == "kind 99" and kinds.find(99) is None
    with pytest.raises(ValueError, match="'tcp' is not supported: use one of "
                                         r"\['netflux', 'rtp', 'udp', 'udt'\]"):
        kinds.get("tcp")


def test_every_kind_has_a_handle_and_takes_its_defaults() -> None:
    for k in kinds.kinds():
        assert hasattr(k.handle_class(), "from_control"), k.name
        opts = k.check({})
        assert k.area_bytes(opts) >= k.layout.area_size, k.name
    with pytest.raises(ValueError, match="takes no options"):
        kinds.get("udp").check({"x": 1})
    with pytest.raises(ValueError, match="already registered"):
        kinds.register("udp")
    with pytest.raises(ValueError, match="no kind 'sctp' in csrc/proto/kinds.def"):
        kinds.register("sctp")


def test_counter_descriptions_are_complete_and_metric_names_unique() -> None:
    seen: set[str] = set()
    assert set(COUNTER_GROUPS) == set(METRIC_GROUPS) == {"channel", "tx_ring", "rx_ring", "worker"}
    groups = [(METRIC_GROUPS[g], counters) for g, counters in COUNTER_GROUPS.items()]
    groups += [(k.name, k.layout.counters) for k in kinds.kinds()]
    for group, counters in groups:
        for c in counters:
            assert c.help and c.type in ("counter", "gauge", "histogram", "state"), c
            assert c.type != "histogram" or c.unit == "ns", c
            assert (c.type == "state") == bool(c.values), c
            name, _scale = metric_name(group, c)
            assert _METRIC.match(name) and name not in seen, name
            seen.add(name)
    assert "rtudp_channel_tx_lateness_seconds" in seen and "rtudp_netflux_rtt_seconds" in seen
    assert "rtudp_rtp_rx_frames" in seen and "rtudp_channel_tx_bytes" in seen
    assert {"rtudp_channel_tx_full_events", "rtudp_channel_tx_unblocked_claims",
            "rtudp_channel_rx_records_lost", "rtudp_channel_tx_bytes_consumed",
            "rtudp_worker_restarts", "rtudp_worker_loops", "rtudp_worker_sleeps",
            "rtudp_worker_spin_seconds"} <= seen


def test_ring_and_worker_counters_read_their_fields() -> None:
    """The rings' and a worker slot's counters, as C describes them, read the fields
    that the hand-written readers read before (golden lists)."""
    t = ffi.new("struct rtudp_mpsc_ring *")
    t.records_consumed, t.bytes_consumed, t.unblocked_claims = 3, 300, 1
    t.corrupt_records, t.full_events = 2, 9
    assert read_counters(COUNTER_GROUPS["tx_ring"], t) == {
        "records_consumed": 3, "bytes_consumed": 300, "unblocked_claims": 1,
        "corrupt_records": 2, "full_events": 9}
    r = ffi.new("struct rtudp_bcast_ring *")
    r.records_written, r.bytes_written, r.corrupt_records = 5, 500, 1
    r.lapped_events, r.records_lost = 2, 40
    assert read_counters(COUNTER_GROUPS["rx_ring"], r) == {
        "records_written": 5, "bytes_written": 500, "corrupt_records": 1, "lapped_events": 2,
        "records_lost": 40}
    w = ffi.new("struct rtudp_worker_slot *")
    names = ("restarts", "loops", "sleeps", "spin_ns", "spin_other_ns", "demotions",
             "demote_preempted", "channels", "idle_poll", "sleep_cpu_ns", "bridge_ns",
             "capped_sleeps", "rx_turns", "cpu_contended", "host_pauses",
             "host_pause_ns", "host_pause_max_ns", "warmups", "warmup_lead_ns", "idle_source",
             "rx_coalesce_ns", "rx_coalesced", "idle_poller_pid",
             "idle_poller_cpu_ns", "tx_coalesce_ns", "tx_coalesced", "tx_sent", "tx_late_sent")
    for i, name in enumerate(names, 1):
        setattr(w, name, i)
    w.spin_margin_ns = -7  # signed
    got = read_counters(COUNTER_GROUPS["worker"], w)
    assert got == {**{n: i for i, n in enumerate(names, 1)}, "spin_margin_ns": -7}


def test_block_counters_read_the_fields_and_include_the_direct_sends() -> None:
    b = ffi.new("struct rtudp_channel_block *")
    b.tx_packets, b.tx_bytes, b.tx_immediate, b.rx_errors = 5, 100, 1, 4
    b.direct.packets, b.direct.bytes, b.direct.fallbacks = 2, 10, 1
    b.tx_journal.restart_left, b.tx_journal.restart_resent = 7, 8
    got = block_counters(b)
    old = ("tx_packets", "tx_bytes", "tx_immediate", "tx_errors", "tx_kernel_stamped",
           "tx_requested", "tx_late", "tx_ring_faults", "rx_packets", "rx_bytes",
           "rx_truncated", "rx_kernel_drops", "rx_errors", "tx_restart_left",
           "tx_restart_resent", "tx_direct", "tx_direct_fallbacks")
    assert set(old) <= set(got)
    assert (got["tx_packets"], got["tx_bytes"], got["tx_immediate"], got["tx_direct"]) == \
        (7, 110, 3, 2)
    assert (got["tx_direct_fallbacks"], got["rx_errors"], got["tx_restart_left"],
            got["tx_restart_resent"]) == (1, 4, 7, 8)
    assert sorted(block_histograms(b)) == ["rx_delay", "tx_lateness"]


def test_netflux_and_rtp_keys_are_the_ones_stats_had() -> None:
    nf = kinds.get("netflux").layout
    a = ffi.new("struct rtudp_nf_area *")
    a.rx.link, a.rx.duplicate, a.rx.old, a.rx.short_pkts = lib.RTUDP_NF_UP, 1, 2, 3
    a.tx.max_lateness_ns, a.rx.last_rtt_ns = -5, 1234
    got = nf.stats(read_counters(nf.counters, a))
    tx = ("sent", "missed", "send_errors", "image_busy", "max_lateness_ns", "own_jitter_ns",
          "seq", "feedback", "cycle", "start_ns", "last_sent_ns", "standby_sent",
          "standby_errors", "yielded", "claim_breaks", "standby_held")
    rx = ("valid", "duplicate", "old", "short_pkts", "partner_lost", "feedback_lost",
          "watchdog_trips", "recoveries", "resyncs", "last_rtt_ns", "partner_jitter_ns",
          "partner_seq", "partner_feedback", "last_valid_ns", "lost_at_ns",
          "recovered_at_ns", "events")
    hist = [f"nf_{h}_{s}" for h in ("own_interval", "partner_interval", "rtt")
            for s in ("count", "min_ns", "max_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns",
                      "p999_ns")]
    assert sorted(got) == sorted([f"nf_{k}" for k in tx + rx] + ["nf_rejected", "nf_link"] + hist)
    assert (got["nf_link"], got["nf_rejected"], got["nf_max_lateness_ns"]) == ("up", 6, -5)
    assert got["nf_last_rtt_ns"] == 1234 and got["nf_rtt_count"] == 0

    rtp = kinds.get("rtp").layout
    r = ffi.new("struct rtudp_rtp_area *")
    r.rx_lost, r.tx_ssrc = -2, 0xABCDEF01
    got = rtp.stats(read_counters(rtp.counters, r))
    old = ("tx_ssrc", "tx_next_seq", "tx_next_ts", "tx_frames", "tx_underruns",
           "tx_bad_records", "rx_frames", "rx_erasures", "rx_erased", "rx_invalid",
           "rx_duplicates", "rx_late", "rx_reordered", "rx_restarts", "rx_ssrc", "rx_lost",
           "rx_expected", "rx_jitter", "rx_other_ssrc", "rx_no_buffer", "rx_published_errors",
           "rx_bad_seq", "rx_probation_dropped", "rx_held_aside")
    # RTCP's counters keep RFC 3550's names, unprefixed (flag BARE)
    rtcp = ("rtcp_sr_sent", "rtcp_rr_sent", "rtcp_sr_received", "rtcp_rr_received", "rtcp_bad",
            "rtcp_rtt_ns", "rtcp_remote_fraction_lost", "rtcp_remote_cumulative_lost",
            "rtcp_remote_jitter_ns")
    assert sorted(got) == sorted([f"rtp_{k}" for k in old] + list(rtcp))
    assert (got["rtp_rx_lost"], got["rtp_tx_ssrc"]) == (-2, 0xABCDEF01)
    r.rtcp_remote_fraction_lost = 64  # kept in 256ths, given as 0..1
    assert rtp.stats(read_counters(rtp.counters, r))["rtcp_remote_fraction_lost"] == 0.25


def test_an_area_that_fails_its_check_is_an_error_not_counters() -> None:
    from rtudp.shmring.errors import BadSegmentError

    nf = kinds.get("netflux")
    a = ffi.new("struct rtudp_nf_area *")  # no config magic
    with pytest.raises(BadSegmentError, match="here: netflux config magic"):
        nf.read(a, ffi.sizeof(a[0]), "here")
    with pytest.raises(BadSegmentError, match="kind area of 8 bytes, needs"):
        kinds.get("rtp").read(ffi.new("struct rtudp_rtp_area *"), 8, "there")
