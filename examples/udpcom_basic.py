"""UDPCom's usage example on rtudp: ``from udpcom import UdpCom`` becomes
``from rtudp.compat.udpcom import UdpCom``; the calls stay.  Three packets leave 1 ms
apart; the receiver reads them with their kernel receive times.

    python examples/udpcom_basic.py
"""
import time

from rtudp import lock_memory
from rtudp.compat.udpcom import UdpCom

# packets due 1 ms after they are queued: this program's memory resident first
print(lock_memory())

sender = UdpCom("127.0.0.1", 24321, "127.0.0.1", 24322, capacity=1000, direction=0)
receiver = UdpCom("127.0.0.1", 24322, "127.0.0.1", 24321, capacity=4000, direction=1)
with sender, receiver:                     # close_socket() on leaving
    for end in (sender, receiver):
        end.init_socket()
        end.start()
    first_ns = time.monotonic_ns() + 1_000_000
    for i in range(3):
        sender.send_data(b"Hello World %d" % i, first_ns + i * 1_000_000)
    for data, timestamp in receiver.receive_batch(3, timeout_ns=5_000_000_000):
        print(f"received {data!r} at {timestamp} ns (CLOCK_MONOTONIC)")
    while sender.get_send_length():        # statistics count what has left
        time.sleep(0.001)
    stats = sender.get_packet_stats()
print(f"Packets sent: {stats['n_packets_sent']}, max latency {stats['max_latency_ns']} ns")
