"""librtpsynth's RtpServer minimal example on rtudp: a channel bound to loopback sends
to itself; ``pkt_in`` gets the datagram, its sender and its receive time.

    python examples/rtpsynth_server.py

Only the import line changes (``rtpsynth.RtpServer`` -> ``rtudp.compat.rtpsynth.RtpServer``).
The channel's socket belongs to an rtudp worker, which sends at once; the callback
runs on the server's dispatcher thread, every tick.
"""
import threading

from rtudp.compat.rtpsynth.RtpServer import RtpQueueFullError, RtpServer

srv = RtpServer(tick_hz=200)
ch = None
try:
    rx = []
    arrived = threading.Event()

    def pkt_in(pkt: bytes, addr: tuple, rtime_ns: int) -> None:
        rx.append((pkt, addr, rtime_ns))
        arrived.set()

    ch = srv.create_channel(pkt_in=pkt_in, bind_host="127.0.0.1", bind_port=0, queue_size=32)
    addr = ch.local_addr
    ch.set_target(addr[0], addr[1])
    try:
        ch.send_pkt(b"hello")
    except RtpQueueFullError:
        print("queue full: not sent")
    if not arrived.wait(5):
        raise SystemExit("nothing arrived within 5 s")
    pkt, sender, rtime_ns = rx[0]
    print(f"pkt_in got {pkt!r} from {sender[0]}:{sender[1]} (rtime_ns {rtime_ns})")
    print(f"channel bound to {addr[0]}:{addr[1]}, closed: {ch.closed}")
finally:
    if ch is not None:
        ch.close()
    srv.shutdown()
