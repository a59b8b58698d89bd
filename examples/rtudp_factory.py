"""RtUDP's factory example on rtudp: a sender and a receiver on loopback, one packet
due 1 ms from now, its receive time, and the sender's statistics.

    python examples/rtudp_factory.py [socket|emulated]

RtUDP programs keep their import line (``from rtudp import create_rtudp``).  The
``socket`` endpoints are served by rtudp's worker pool (started inside this program
unless one runs); ``emulated`` ones by an in-process network, with the same methods,
checks and statistics keys.
"""
import sys
import time

from rtudp import create_rtudp, lock_memory

implementation = sys.argv[1] if len(sys.argv) > 1 else "socket"
# a packet due 1 ms after it is queued: nothing this program runs may wait on the disk
# or on a first touch meanwhile (what it could not lock, it says)
print(lock_memory())

# direction: "tx" (or RtUDP's 0) sends, "rx" (1) receives, "both" (2) does both
sender = create_rtudp(implementation, "127.0.0.1", 24300, "127.0.0.1", 24301,
                      capacity=1000, direction="tx")
receiver = create_rtudp(implementation, "127.0.0.1", 24301, "127.0.0.1", 24300,
                        capacity=4000, direction="rx")
sender.init_socket()
receiver.init_socket()
sender.start()
receiver.start()
try:
    due_ns = time.monotonic_ns() + 1_000_000  # 1 ms from now, on CLOCK_MONOTONIC
    sender.send_data(b"Hello World", due_ns)
    data, rx_ns = receiver.receive_data(timeout_ns=5_000_000_000)
    print(f"received {data!r}, {rx_ns - due_ns} ns after it was due")
    # a packet leaves once sent; its statistics count then
    while sender.get_send_length():
        time.sleep(0.001)
    stats = sender.get_packet_stats()
    print(f"Packets sent: {stats['n_packets_sent']}")
    print(f"Max latency: {stats['max_latency_ns']} ns")
finally:
    sender.stop()
    receiver.stop()
    sender.close_socket()
    receiver.close_socket()
