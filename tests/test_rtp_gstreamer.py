"""GStreamer interop of rtp channels (Debian gstreamer1.0-tools, -plugins-base/-good,
installed by .ci/run): GStreamer's PCMU payloader into our channel, and our channel
into GStreamer's jitter buffer, depayloader and mu-law decoder."""
from __future__ import annotations

import math
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import wave

import pytest

from fake_worker import worker_argv
from waiting import wait_for
from rtudp.rtp import linear2ulaw, ulaw2linear

GST = shutil.which("gst-launch-1.0")
pytestmark = [
    pytest.mark.rtudp(worker=worker_argv()),
    pytest.mark.skipif(GST is None, reason="gst-launch-1.0 is not installed (Debian "
                                           "gstreamer1.0-tools; .ci/run installs it)"),
]

FRAMES = 50
SAMPLES = 160  # 20 ms at 8 kHz


def gst(*pipeline: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([GST, "-q", "-e", *pipeline], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    """End a gst-launch we started (SIGINT: -e turns it into EOS); its output."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def udp_port_bound(port: int) -> bool:
    """Whether some socket is bound to UDP port ``port`` on this host (IPv4)."""
    with open("/proc/net/udp") as f:
        next(f)
        return any(int(line.split()[1].split(":")[1], 16) == port for line in f)


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_gstreamer_pcmu_into_our_channel(rtudp_pool):
    rx = rtudp_pool.open_channel("rx", kind="rtp", direction=1, options={"latency_ms": 60})
    host, port = rx.local
    proc = gst("audiotestsrc", f"num-buffers={FRAMES}", f"samplesperbuffer={SAMPLES}",
               "is-live=true", "!", "audio/x-raw,rate=8000,channels=1", "!", "mulawenc", "!",
               "rtppcmupay", "!", "udpsink", f"host={host}", f"port={port}")
    try:
        frames: list = []
        deadline = time.monotonic() + 15
        while len(frames) < FRAMES and time.monotonic() < deadline:
            frames += rx.recv_many(64, timeout=0.5)
        proc.wait(timeout=15)
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert len(frames) == FRAMES, f"got {len(frames)} frames; gst said: {out}"
    assert not any(f.erasure for f in frames)
    assert [f.lseq - frames[0].lseq for f in frames] == list(range(FRAMES))
    assert all(f.pt == 0 and len(f.payload) == SAMPLES for f in frames)
    assert [(f.ts - frames[0].ts) & 0xFFFFFFFF for f in frames] == \
        [SAMPLES * i for i in range(FRAMES)]
    st = rx.stats()
    assert st["rtp_rx_invalid"] == 0 and st["rtp_rx_erasures"] == 0 and st["rtp_rx_lost"] == 0


def test_our_channel_pcmu_into_gstreamer(rtudp_pool, tmp_path):
    port = free_udp_port()
    wav_path = tmp_path / "out.wav"
    caps = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"
    proc = gst("udpsrc", "address=127.0.0.1", f"port={port}", f"caps={caps}", "!",
               "rtpjitterbuffer", "latency=100", "!", "rtppcmudepay", "!", "mulawdec", "!",
               "wavenc", "!", "filesink", f"location={wav_path}")
    try:
        assert wait_for(lambda: udp_port_bound(port) or proc.poll() is not None, timeout=10)
        assert proc.poll() is None, stop(proc)
        tx = rtudp_pool.open_channel("tx", remote=("127.0.0.1", port), direction=0,
                                     kind="rtp", options={"ptime_ms": 20, "payload_type": 0})
        # a 440 Hz tone, mu-law encoded by us: GStreamer must decode what we sent
        pcm = struct.pack(f"<{FRAMES * SAMPLES}h", *(
            int(12000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(FRAMES * SAMPLES)))
        ulaw = linear2ulaw(pcm)
        tx.send_many([ulaw[i * SAMPLES:(i + 1) * SAMPLES] for i in range(FRAMES)])
        assert wait_for(lambda: tx.stats()["tx_packets"] == FRAMES, timeout=10)
        time.sleep(0.5)  # past GStreamer's jitter-buffer latency
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        got = w.readframes(w.getnframes())
    want = ulaw2linear(ulaw)
    if sys.byteorder == "big":
        want.byteswap()  # WAV samples are little-endian
    assert got == want.tobytes(), (f"WAV has {len(got) // 2} samples, sent "
                                      f"{FRAMES * SAMPLES}; gst said: {out}")
