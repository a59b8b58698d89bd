"""librtpsynth's RtpProc example on rtudp: a callback every 20 ms on the scheduler's
thread, rescheduled from its deadline (no drift), stopped after five runs.

    python examples/rtpsynth_proc.py
"""
import threading

from rtudp.compat.rtpsynth.RtpProc import RtpProc

PERIOD_NS = 20_000_000
runs = []
done = threading.Event()


def proc_in(now_ns: int, deadline_ns: int):
    runs.append((now_ns, deadline_ns))
    if len(runs) == 5:
        done.set()
        return None                        # unschedule
    base_ns = now_ns if deadline_ns == 0 else deadline_ns
    return base_ns + PERIOD_NS


proc = RtpProc()
channel = proc.create_channel(proc_in)
try:
    if not done.wait(10):
        raise SystemExit(f"only {len(runs)} runs within 10 s")
finally:
    channel.close()
    proc.shutdown()
deadlines = [d for _, d in runs[1:]]
steps = {(b - a) // 1_000_000 for a, b in zip(deadlines, deadlines[1:])}
print(f"{len(runs)} runs; first deadline 0; deadlines {sorted(steps)} ms apart")
print(f"every run at or after its deadline: {all(n >= d for n, d in runs)}")
