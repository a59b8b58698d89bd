"""Stress: a netflux channel's promises while its workers stall, the CPUs are busy and
a worker dies (tests/stress_harness.py).

A partner rejects a sequence byte that does not advance (CODESYS's Netflux and ours):
so what leaves the host must carry the sequence bytes in order, each once, whichever
of the serving worker and its standby sends a cycle (csrc/proto/netflux_shm.h, the
claim word).  A plain socket observes the wire; the channel's counters must add up to
what it saw, and the schedule must keep its phase after the stalls.
"""
from __future__ import annotations

import time

import pytest

from rtudp.tools.bench.netflux_standby import sequence_faults
from stress_harness import (CpuHogs, Staller, WireObserver, kill_worker, rng, seed_note,
                            stall_once, wait_until, worker_pids)

pytestmark = pytest.mark.stress

MS = 1_000_000
INTERVAL_NS = MS
SIZE = 16
RUN_S = 5.0


def _open(pool, remote: tuple[str, int]):
    """A 1 ms netflux channel on the first CPU's worker (its standby on the other, the
    default) sending to `remote`; returns (channel, schedule start ns)."""
    start = time.monotonic_ns() + 50 * MS
    ch = pool.open_channel("nf", local=("127.0.0.1", 0), remote=remote, kind="netflux",
                           cpu=pool.cpus[0], max_datagram=2 + SIZE,
                           options={"send_interval": INTERVAL_NS / 1e9, "watch_interval": 1.0,
                                    "send_size": SIZE, "recv_size": SIZE, "start_ns": start})
    return ch, start


def _wire(obs: WireObserver, s: dict, unrecorded: int = 0,
          timeline: list[float] | None = None) -> list[int]:
    """The sequence bytes the observer saw, once every packet the channel counts as
    sent (by either worker) has arrived: no more than that, but for `unrecorded` (a
    worker killed after its send and before it counted it).  A failure names the
    observer's own drops, the channel's counters and the test's `timeline` (s)."""
    sent = s["nf_sent"] + s["nf_standby_sent"]
    assert obs.wait_for(sent, 10.0), (len(obs.packets), sent, obs.kernel_drops,
                                      {k: v for k, v in s.items() if k.startswith("nf_")},
                                      timeline, seed_note())
    time.sleep(0.05)  # anything sent past the count would be here by now
    assert obs.kernel_drops == 0, obs.kernel_drops
    seqs = [p[0] for p in obs.payloads()]
    assert sent <= len(seqs) <= sent + unrecorded, (len(seqs), sent, s, seed_note())
    return seqs


def _cycle_due(start: int) -> int:
    """The schedule's cycle count now: cycles due so far."""
    return max(0, (time.monotonic_ns() - start) // INTERVAL_NS + 1)


def test_netflux_sequence_advances_on_the_wire_through_stalls_and_hogs(rtudp_pool) -> None:
    """Workers stopped 1-20 ms at random moments, a busy loop on every CPU: each
    sequence byte on the wire is the last one + 1 (no repeat, no step back; a gap only
    for a send that failed, counted); every cycle is sent by one of the workers or
    counted as missed; the schedule keeps its phase."""
    with WireObserver() as obs:
        ch, start = _open(rtudp_pool, obs.addr)
        with ch:
            with CpuHogs(), Staller(lambda: worker_pids(rtudp_pool), rng("netflux-stalls")) as st:
                time.sleep(RUN_S)
            # no drift: the cycle count catches up with the clock once nothing stalls
            wait_until(lambda: abs(ch.stats()["nf_cycle"] - _cycle_due(start)) <= 2, 10.0,
                       f"the schedule back in phase {seed_note()}")
            rtudp_pool.pause_channel("nf")  # counters stand still: they add up when read
            s = ch.stats()
            seqs = _wire(obs, s)
    print(f"{st.summary()}; {s['nf_sent']} sent, {s['nf_standby_sent']} by the standby, "
          f"{s['nf_missed']} skipped, {s['nf_yielded']} yielded {seed_note()}")
    steps = sequence_faults(seqs)
    assert steps["repeats"] == 0 and steps["back"] == 0, (steps, seed_note())
    assert steps["skipped"] == s["nf_send_errors"] + s["nf_standby_errors"], (steps, s)
    # the serving worker's account of every cycle it passed: sent (or failed), found
    # sent by the standby, or skipped as missed
    assert s["nf_cycle"] == (s["nf_sent"] + s["nf_send_errors"] + s["nf_yielded"]
                             + s["nf_missed"]), s
    assert len(st.stalls) > 20, st.summary()


def test_netflux_cycles_the_standby_sent_are_not_counted_missed(rtudp_pool) -> None:
    """The serving worker stopped for 30 intervals, three times, while its standby sends
    the cycles: on waking, a whole interval late, the worker skips to the current slot,
    and the cycles it skipped that the standby sent count as the standby's
    (``nf_yielded``), not as missed.  So every cycle is counted once, as what the wire
    has of it: ``nf_missed`` is exactly the cycles a plain socket got no packet for."""
    if len(rtudp_pool.cpus) < 2:
        pytest.skip("one CPU: no second worker to stand by")
    with WireObserver() as obs:
        ch, start = _open(rtudp_pool, obs.addr)
        with ch:
            assert obs.wait_for(20, 5.0), len(obs.packets)
            serving = next(w["pid"] for w in rtudp_pool.workers()
                           if w["cpu"] == rtudp_pool.cpus[0])
            for _ in range(3):
                stall_once(serving, 30 * INTERVAL_NS / 1e9)
                time.sleep(0.05)
            rtudp_pool.pause_channel("nf")  # counters stand still: they add up when read
            due = _cycle_due(start)
            s = ch.stats()
            seqs = _wire(obs, s)
    print(f"{s['nf_cycle']} cycles: {s['nf_sent']} sent, {s['nf_standby_sent']} by the "
          f"standby, {s['nf_missed']} missed; {len(seqs)} packets on the wire")
    steps = sequence_faults(seqs)
    assert steps["repeats"] == 0 and steps["back"] == 0, steps
    # the standby sent cycles of the stopped worker, unless that worker stopped holding
    # its claim (between its claim and its send): then it left its turns, counted
    assert s["nf_standby_sent"] >= 1 or s["nf_standby_held"] >= 1, s
    # the standby's cycles (sent or failed) are yielded, whenever the worker passed them
    assert s["nf_yielded"] == s["nf_standby_sent"] + s["nf_standby_errors"], s
    assert s["nf_cycle"] == (s["nf_sent"] + s["nf_send_errors"] + s["nf_yielded"]
                             + s["nf_missed"]), s
    # missed: the cycles counted that no packet went out for
    assert s["nf_missed"] == (s["nf_cycle"] - len(seqs) - s["nf_send_errors"]
                              - s["nf_standby_errors"]), (s, len(seqs))
    # no cycle counted before it was due (but for one run early, by tx_coalesce_us)
    assert s["nf_cycle"] <= due + 1, (s, due)


def test_netflux_sequence_advances_across_worker_kills(rtudp_pool) -> None:
    """The serving worker SIGKILLed twice, then the standby's, with stalls between:
    the successor takes the sequence up where the claim word left it, so the wire
    still never repeats or steps back (a worker killed between its claim and its send
    leaves one sequence byte unsent: at most one skipped per kill)."""
    cpus = rtudp_pool.cpus
    with WireObserver() as obs:
        ch, _start = _open(rtudp_pool, obs.addr)
        with ch:
            kills = 0
            t0 = time.monotonic()
            phases: list[float] = []
            with Staller(lambda: worker_pids(rtudp_pool), rng("netflux-kills"),
                         gap_ms=(20.0, 80.0)):
                for cpu in (cpus[0], cpus[0], cpus[-1]):
                    time.sleep(0.4)
                    pid = next(w["pid"] for w in rtudp_pool.workers() if w["cpu"] == cpu)
                    kill_worker(rtudp_pool, pid)
                    kills += 1
                    phases.append(round(time.monotonic() - t0, 2))
                time.sleep(0.4)
            phases.append(round(time.monotonic() - t0, 2))
            rtudp_pool.pause_channel("nf")
            phases.append(round(time.monotonic() - t0, 2))
            s = ch.stats()
            print(f"phases {phases} s, cycle {s['nf_cycle']}")
            seqs = _wire(obs, s, unrecorded=kills, timeline=phases)
    steps = sequence_faults(seqs)
    print(f"{len(seqs)} packets, {kills} kills, {steps} {seed_note()}")
    assert steps["repeats"] == 0 and steps["back"] == 0, (steps, seed_note())
    assert steps["skipped"] <= kills + s["nf_send_errors"] + s["nf_standby_errors"], steps
