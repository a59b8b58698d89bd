"""RtUDP's connected pair and type-hinting examples on rtudp: ``create_rtudp_pair``
gives a sender and a receiver; a function typed with ``RtUdpBase`` serves either
implementation.  100 packets leave 1 ms apart and all arrive, in order.

    python examples/rtudp_pair.py [socket|emulated]
"""
import sys
import time

from rtudp import RtUdpBase, create_rtudp_pair

N = 100


def receive_all(connection: RtUdpBase, n: int) -> list[bytes]:
    """``n`` packets from any RtUDP implementation (all of them or TimeoutError)."""
    return [data for data, _rx_ns in connection.receive_batch(n, timeout_ns=5_000_000_000)]


implementation = sys.argv[1] if len(sys.argv) > 1 else "socket"
sender, receiver = create_rtudp_pair(implementation, "127.0.0.1", 24311, "127.0.0.1", 24312,
                                     capacity=1000)
for end in (sender, receiver):
    end.init_socket()
    end.start()
try:
    t0 = time.monotonic_ns() + 5_000_000
    for i in range(N):
        sender.send_data(i.to_bytes(4, "big"), t0 + i * 1_000_000)
    got = receive_all(receiver, N)
    in_order = [int.from_bytes(p, "big") for p in got] == list(range(N))
    print(f"{implementation}: {len(got)} of {N} packets received, in order: {in_order}")
finally:
    sender.close_socket()
    receiver.close_socket()
print(f"sender: {sender!r}, sent {sender.get_packet_stats()['n_packets_sent']}")
