"""Netflux's quick start on rtudp: one instance exchanges its image with itself over
loopback (it is its own partner), then prints its status.

    python examples/netflux_basic.py

``from netflux_main import NetfluxMain`` becomes
``from rtudp.compat.netflux_main import NetfluxMain``.  Intervals are seconds, as in
Netflux; the cycle runs in an rtudp worker on an absolute schedule.
"""
from rtudp.compat.netflux_main import NetfluxMain

netflux = NetfluxMain(
    local_port=24410,
    remote_ip="127.0.0.1",
    remote_port=24410,                     # itself: what it sends, it receives
    send_interval=0.005,                   # 5 ms
    watch_interval=0.030,                  # 30 ms watchdog
    local_ip="127.0.0.1",
)
if not netflux.start():
    raise SystemExit(f"cannot start: {netflux.receiver.error_message}")
try:
    netflux.set_send_data(value1=123.45, value2=678.90, value3=42, value4=1000, flags=0xAB)
    for _ in range(100):                   # images keep coming; wait for ours
        recv_data = netflux.wait_update(timeout=5.0)
        if recv_data.value3 == 42:
            break
    print(f"Received: {recv_data}")
    netflux.print_status()
    if netflux.receiver.error:
        print(f"Receiver error: {netflux.receiver.error_message}")
    stats = netflux.statistics.get_stats()
    print(f"Own interval: {stats.avg_own_interval:.2f} ms")
    print(f"RTT: {stats.last_rtt:.2f} ms")
finally:
    netflux.stop()
