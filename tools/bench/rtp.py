"""``rtudp bench rtp``: rtudp.rtp against librtpsynth (PyPI ``rtpsynth``) and audioop.

All cases run in this process, one after the other, on the same packets:

1. generation from Python, one ``next_pkt(160, 0)`` call per packet
2. generation batched: ``next_into`` (one C call fills a buffer with N packets) and
   ``next_many`` (one C call returns N bytes objects)
3. jitter buffer from Python, one ``udp_in`` per packet: in order, and shuffled in
   windows of 10 with 10 % duplicates
4. our jitter buffer driven from C (``rtp_bench_jbuf``, through cffi)
5. G.711 mu-law encode / decode of 160-sample frames

Each figure is the best of a few runs.  Targets are printed as PASS/MISS, never asserted.
"""
from __future__ import annotations

import argparse
import array
import importlib.util
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

from .common import add_common_arguments, ratio, run_benchmark, target

TARGET_GEN_VS_RTPSYNTH = 1.3
TARGET_GEN_BATCH_PPS = 20e6
TARGET_JBUF_VS_RTPSYNTH = 1.3
TARGET_JBUF_C_PPS = 40e6
TARGET_G711_VS = 1.0
FRAME = 160
RTPSYNTH_MISSING = "rtpsynth: not installed (pip install 'rtudp[bench]')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rtudp bench rtp``."""
    add_common_arguments(parser, "small counts (a few seconds)")


def _best_rate(fn: Callable[[], int], runs: int) -> float:
    """Best items/s over `runs` calls of fn (which returns how many items it did)."""
    best = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        best = max(best, n / dt if dt > 0 else 0.0)
    return best


def shuffle_in_windows(pkts: list[bytes], seed: int = 1, loss: float = 0.0,
                       dup: float = 0.1) -> list[bytes]:
    """Shuffle in windows of 10, drop a share ``loss`` and duplicate a share ``dup`` of
    the packets (seeded): the jitter buffers' shuffled case, and the interop tests'."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for w in range(0, len(pkts), 10):
        win = pkts[w:w + 10]
        rng.shuffle(win)
        for p in win:
            if loss and rng.random() < loss:
                continue
            out.append(p)
            if rng.random() < dup:
                out.append(p)
    return out


def _gen_case(cls: Any, n: int) -> Callable[[], int]:
    def run() -> int:
        s = cls(8000, 20)
        nxt = s.next_pkt
        for _ in range(n):
            nxt(160, 0)
        return n
    return run


def _jbuf_case(cls: Any, pkts: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        jb = cls(20)
        udp_in = jb.udp_in
        for p in pkts:
            udp_in(p)
        jb.flush()
        return len(pkts)
    return run


def _codec_case(fn: Callable[[Any], Any], frame: Any, n: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            fn(frame)
        return n
    return run


def measure(quick: bool) -> dict[str, Any]:
    """Run every case; returns the report (figures, ratios, targets, skipped)."""
    from rtudp import rtp
    from rtudp.tools.bench._native import ffi, lib

    n = 200_000 if quick else 2_000_000
    runs = 2 if quick else 3
    have_theirs = importlib.util.find_spec("rtpsynth") is not None
    skipped: dict[str, str] = {}
    figures: dict[str, float | None] = {}
    if have_theirs:
        from rtpsynth.RtpJBuf import RtpJBuf as TheirJBuf
        from rtpsynth.RtpSynth import RtpSynth as TheirSynth
        from rtpsynth.RtpUtils import linear2ulaw as their_enc
        from rtpsynth.RtpUtils import ulaw2linear as their_dec
    else:
        skipped["rtpsynth"] = RTPSYNTH_MISSING

    # 1-2 generation
    figures["gen_ours"] = _best_rate(_gen_case(rtp.RtpSynth, n), runs)
    figures["gen_rtpsynth"] = _best_rate(_gen_case(TheirSynth, n), runs) if have_theirs else None
    batch = 1000
    buf = bytearray(batch * 172)
    synth = rtp.RtpSynth(8000, 20)

    def gen_into() -> int:
        for _ in range(n // batch):
            synth.next_into(buf, batch, 160, 0)
        return n // batch * batch

    def gen_many() -> int:
        for _ in range(n // batch):
            synth.next_many(batch, 160, 0)
        return n // batch * batch
    figures["gen_batch_into"] = _best_rate(gen_into, runs)
    figures["gen_batch_list"] = _best_rate(gen_many, runs)

    # 3 jitter buffer from Python
    s = rtp.RtpSynth(8000, 20)
    jn = n // 2
    in_order = [s.next_pkt(160, 0) for _ in range(jn)]
    shuffled = shuffle_in_windows(in_order)
    figures["jbuf_ours_inorder"] = _best_rate(_jbuf_case(rtp.RtpJBuf, in_order), runs)
    figures["jbuf_ours_shuffled"] = _best_rate(_jbuf_case(rtp.RtpJBuf, shuffled), runs)
    if have_theirs:
        figures["jbuf_rtpsynth_inorder"] = _best_rate(_jbuf_case(TheirJBuf, in_order), runs)
        figures["jbuf_rtpsynth_shuffled"] = _best_rate(_jbuf_case(TheirJBuf, shuffled), runs)
    else:
        figures["jbuf_rtpsynth_inorder"] = figures["jbuf_rtpsynth_shuffled"] = None

    def many_case() -> int:
        jb = rtp.RtpJBuf(20)
        for w in range(0, len(shuffled), batch):
            jb.udp_in_many(shuffled[w:w + batch])
        jb.flush()
        return len(shuffled)
    figures["jbuf_ours_shuffled_batch"] = _best_rate(many_case, runs)

    # 4 jitter buffer in C
    released = ffi.new("uint64_t *")
    cn = n * 10
    for key, sh in (("jbuf_c_inorder", 0), ("jbuf_c_shuffled", 1)):
        best = 0.0
        for _ in range(runs):
            ns = lib.rtp_bench_jbuf(cn, 20, sh, released)
            if ns > 0:
                best = max(best, cn / (ns / 1e9))
        figures[key] = best

    # 5 G.711, 160-sample frames
    pcm = array.array("h", (random.Random(2).randint(-32768, 32767) for _ in range(FRAME)))
    pcm_bytes = pcm.tobytes()
    codes = rtp.linear2ulaw(pcm)
    gn = n // 2
    figures["ulaw_enc_ours"] = _best_rate(_codec_case(rtp.linear2ulaw, pcm, gn), runs)
    figures["ulaw_dec_ours"] = _best_rate(_codec_case(rtp.ulaw2linear, codes, gn), runs)
    figures["ulaw_dec_ours_bytes"] = _best_rate(_codec_case(rtp.ulaw2pcm, codes, gn), runs)
    if have_theirs:
        figures["ulaw_enc_rtpsynth"] = _best_rate(_codec_case(their_enc, pcm, gn), runs)
        figures["ulaw_dec_rtpsynth"] = _best_rate(_codec_case(their_dec, codes, gn), runs)
    else:
        figures["ulaw_enc_rtpsynth"] = figures["ulaw_dec_rtpsynth"] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
        figures["ulaw_enc_audioop"] = _best_rate(
            _codec_case(lambda b: audioop.lin2ulaw(b, 2), pcm_bytes, gn), runs)
        figures["ulaw_dec_audioop"] = _best_rate(
            _codec_case(lambda b: audioop.ulaw2lin(b, 2), codes, gn), runs)
    except ImportError:
        skipped["audioop"] = "audioop: not available (Python >= 3.13 needs audioop-lts)"
        figures["ulaw_enc_audioop"] = figures["ulaw_dec_audioop"] = None

    ratios = {name: ratio(figures.get(ours), figures.get(theirs)) for name, (ours, theirs) in {
        "gen_vs_rtpsynth": ("gen_ours", "gen_rtpsynth"),
        "jbuf_inorder_vs_rtpsynth": ("jbuf_ours_inorder", "jbuf_rtpsynth_inorder"),
        "jbuf_shuffled_vs_rtpsynth": ("jbuf_ours_shuffled", "jbuf_rtpsynth_shuffled"),
        "ulaw_enc_vs_rtpsynth": ("ulaw_enc_ours", "ulaw_enc_rtpsynth"),
        "ulaw_dec_vs_rtpsynth": ("ulaw_dec_ours", "ulaw_dec_rtpsynth"),
        "ulaw_enc_vs_audioop": ("ulaw_enc_ours", "ulaw_enc_audioop"),
        "ulaw_dec_bytes_vs_audioop": ("ulaw_dec_ours_bytes", "ulaw_dec_audioop"),
    }.items()}
    targets = {name: target(value, goal, True) for name, (value, goal) in {
        "gen_per_packet_vs_rtpsynth": (ratios["gen_vs_rtpsynth"], TARGET_GEN_VS_RTPSYNTH),
        "gen_batched_pkt_per_s": (figures["gen_batch_into"], TARGET_GEN_BATCH_PPS),
        "jbuf_inorder_vs_rtpsynth": (ratios["jbuf_inorder_vs_rtpsynth"],
                                     TARGET_JBUF_VS_RTPSYNTH),
        "jbuf_shuffled_vs_rtpsynth": (ratios["jbuf_shuffled_vs_rtpsynth"],
                                      TARGET_JBUF_VS_RTPSYNTH),
        "jbuf_c_inorder_pkt_per_s": (figures["jbuf_c_inorder"], TARGET_JBUF_C_PPS),
        "ulaw_enc_vs_rtpsynth": (ratios["ulaw_enc_vs_rtpsynth"], TARGET_G711_VS),
        "ulaw_dec_vs_rtpsynth": (ratios["ulaw_dec_vs_rtpsynth"], TARGET_G711_VS),
        "ulaw_enc_vs_audioop": (ratios["ulaw_enc_vs_audioop"], TARGET_G711_VS),
        "ulaw_dec_bytes_vs_audioop": (ratios["ulaw_dec_bytes_vs_audioop"], TARGET_G711_VS),
    }.items()}
    return {"figures": figures, "ratios": ratios, "targets": targets, "skipped": skipped,
            "packets": n}


def _fmt(v: float | None) -> str:
    return "-" if v is None else (f"{v / 1e6:8.2f} M/s" if v > 1000 else f"{v:8.2f}x")


def print_report(report: dict[str, Any]) -> None:
    """The table: each case, ours against rtpsynth's (and audioop's), then the targets."""
    f = report["figures"]
    rows = [
        ("generation, next_pkt per call", "gen_ours", "gen_rtpsynth"),
        ("generation, next_into x1000", "gen_batch_into", None),
        ("generation, next_many x1000", "gen_batch_list", None),
        ("jitter buffer, udp_in in order", "jbuf_ours_inorder", "jbuf_rtpsynth_inorder"),
        ("jitter buffer, udp_in shuffled+dups", "jbuf_ours_shuffled", "jbuf_rtpsynth_shuffled"),
        ("jitter buffer, udp_in_many shuffled", "jbuf_ours_shuffled_batch", None),
        ("jitter buffer in C, in order", "jbuf_c_inorder", None),
        ("jitter buffer in C, shuffled+dups", "jbuf_c_shuffled", None),
        ("mu-law encode 160 samples (frames)", "ulaw_enc_ours", "ulaw_enc_rtpsynth"),
        ("mu-law decode 160 -> array('h')", "ulaw_dec_ours", "ulaw_dec_rtpsynth"),
    ]
    print(f"rtudp bench rtp ({report['packets']:,} packets per case; best of runs)")
    print(f"{'case':40} {'rtudp':>14} {'rtpsynth':>14} {'ratio':>8}")
    for label, ours, theirs in rows:
        o, t = f.get(ours), f.get(theirs) if theirs else None
        r = f"{o / t:7.2f}x" if o and t else "-"
        print(f"{label:40} {_fmt(o):>14} {_fmt(t):>14} {r:>8}")
    print(f"{'mu-law encode vs audioop.lin2ulaw':40} {_fmt(f['ulaw_enc_ours']):>14} "
          f"{_fmt(f['ulaw_enc_audioop']):>14} (audioop)")
    print(f"{'mu-law decode bytes vs audioop':40} {_fmt(f['ulaw_dec_ours_bytes']):>14} "
          f"{_fmt(f['ulaw_dec_audioop']):>14} (audioop)")
    print("targets:")
    for name, t in report["targets"].items():
        v = t["value"]
        shown = "-" if v is None else (f"{v / 1e6:.1f} M/s" if v > 1000 else f"{v:.2f}x")
        goal = t["target"]
        goal_s = f"{goal / 1e6:.0f} M/s" if goal > 1000 else f"{goal:.1f}x"
        print(f"  {'PASS' if t['pass'] else 'MISS'} {name}: {shown} (target >= {goal_s})")
    for why in report["skipped"].values():
        print(f"skipped: {why}")


def run(args: argparse.Namespace) -> int:
    """Measure and print (a table, or JSON with --json); 0 unless something was left
    behind (a missing rtpsynth or audioop is a skipped case, not a failure)."""
    return run_benchmark(args, lambda quick, _quiet: measure(quick), print_report)
