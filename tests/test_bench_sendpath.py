"""`rtudp bench sendpath` (csrc/bench/sendpath_bench.c): every path it measures delivers every
datagram (and, with stamps, gets every TX stamp back), and io_uring is either measured
or reported not available with the reason.

Counts only: speed is never asserted.
"""
from __future__ import annotations

import errno
import os

import pytest

from bench_helpers import positive, report_fixture
from rtudp.tools.bench._native import ffi, lib

URING = ("RTUDP_SENDPATH_URING_SENDMSG", "RTUDP_SENDPATH_URING_FIXED")
ACROSS = ("RTUDP_SENDPATH_SEND", "RTUDP_SENDPATH_SENDMMSG1") + URING
ONE = ("RTUDP_SENDPATH_SEND", "RTUDP_SENDPATH_SENDMMSGK") + URING

#: the quick benchmark, run once: (report, pid of the benchmark process)
bench_run = report_fixture("sendpath")


def _measure(k: int, sockets: int, stamps: bool, paths: tuple[str, ...], groups: int = 20,
             rounds: int = 2) -> tuple[int, object]:
    cfg = ffi.new("struct rtudp_sendpath_config *")
    cfg.k, cfg.sockets, cfg.size, cfg.stamps = k, sockets, 64, stamps
    cfg.groups, cfg.rounds = groups, rounds
    cfg.paths = sum(1 << getattr(lib, p) for p in paths)
    out = ffi.new("struct rtudp_sendpath_result *")
    return lib.rtudp_sendpath_measure(cfg, out), out


def _uring_reported(out: object) -> bool:
    """io_uring ran, or the result says why not (an errno with a message); the same for
    its registered files."""
    sendmsg, fixed = (out.ran[getattr(lib, p)] for p in URING)
    if out.uring_errno:
        return bool(os.strerror(out.uring_errno)) and sendmsg == 0 and fixed == 0
    return sendmsg > 0 and (fixed > 0 or bool(os.strerror(out.files_errno)))


@pytest.mark.parametrize("stamps", [False, True], ids=["plain", "stamps"])
@pytest.mark.parametrize("k,one_socket", [(1, False), (4, False), (16, True)])
def test_every_path_delivers_every_datagram(k: int, one_socket: bool, stamps: bool) -> None:
    paths = ONE if one_socket else ACROSS
    groups, rounds = 20, 2
    rc, out = _measure(k, 1 if one_socket else k, stamps, paths, groups, rounds)
    assert rc == 0, os.strerror(-rc)
    assert _uring_reported(out)
    for name in paths:
        i = getattr(lib, name)
        if name in URING and out.uring_errno or (name == URING[1] and out.files_errno):
            continue
        assert out.error[i] == 0, f"{name}: {os.strerror(-out.error[i])}"
        assert out.ran[i] == rounds, name
        assert out.sent[i] == groups * k * rounds, name
        assert out.received[i] == out.sent[i], name
        if out.stamps_on:
            assert out.stamped[i] == out.sent[i], name
        else:
            assert out.stamped[i] == 0, name
        assert all(out.cpu_ns[i][r] > 0 and out.wall_ns[i][r] > 0 for r in range(rounds))


def test_paths_a_layout_cannot_take_are_refused() -> None:
    # one sendmmsg spans one socket; IORING_OP_SEND has no room for the key cmsg
    assert _measure(4, 4, False, ("RTUDP_SENDPATH_SENDMMSGK",))[0] == -errno.EINVAL
    assert _measure(4, 1, True, ("RTUDP_SENDPATH_URING_SEND",))[0] == -errno.EINVAL
    assert _measure(0, 1, False, ("RTUDP_SENDPATH_SEND",))[0] == -errno.EINVAL
    assert _measure(4, 2, False, ("RTUDP_SENDPATH_SEND",))[0] == -errno.EINVAL
    assert _measure(lib.RTUDP_SENDPATH_MAX_K + 1, 1, False, ("RTUDP_SENDPATH_SEND",))[0] \
        == -errno.EINVAL
    assert _measure(1, 1, False, ("RTUDP_SENDPATH_SEND",),
                    rounds=lib.RTUDP_SENDPATH_MAX_ROUNDS + 1)[0] == -errno.EINVAL


def test_quick_report_counts_add_up(bench_run: tuple[dict, int]) -> None:
    report, _ = bench_run
    assert report["failed"] == {}
    assert report["leftover_segments"] == []
    uring = report["uring"]
    assert uring["available"] or uring["why"], uring
    seen = 0
    for table, by_k in report["tables"].items():
        for k, r in by_k.items():
            for path, e in r["paths"].items():
                if e is None:
                    assert not uring["available"] or (
                        path == "uring_fixed" and uring["fixed_files_why"]), (table, k, path)
                    continue
                seen += 1
                assert e["received"] == e["sent"] and e["lost"] == 0, (table, k, path)
                if r["stamps_on"]:
                    assert e["stamped"] == e["sent"], (table, k, path)
                assert positive(e["cpu_ns_median"]) and positive(e["wall_ns_median"])
                assert e["vs_worker"] is None or positive(e["vs_worker"])
    # 4 + 3 configurations a stamps setting, 3-5 paths each
    assert seen >= 2 * (4 * 2 + 3 * 2)
