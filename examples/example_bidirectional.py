"""Netflux's example_bidirectional on rtudp: Device A and Device B, two Netflux
instances in two threads, exchange their images on loopback.  Each updates its image
every second and prints its status and what it received from the other; the run ends
after ``--seconds`` (or on Ctrl-C).

    python examples/example_bidirectional.py [--seconds 5]

Device A listens on port 24400 and sends to 24401, Device B the other way round.
"""
import argparse
import threading
import time

from rtudp.compat.netflux_main import NetfluxMain

stop = threading.Event()
print_lock = threading.Lock()              # one device's report at a time
results: dict[str, str] = {}


def run_device(name: str, local_port: int, remote_port: int, scale: float, base: int,
               flags: int, partner: str) -> None:
    """One device: start, update the image every second, report, stop."""
    print(f"[Device {name}] Starting...")
    device = NetfluxMain(local_port=local_port, remote_ip="127.0.0.1", remote_port=remote_port,
                         send_interval=0.005, watch_interval=0.030, local_ip="127.0.0.1")
    if not device.start():
        print(f"[Device {name}] Failed to start: {device.sender.error_message}")
        return
    try:
        counter = 0
        while not stop.wait(1.0):
            device.set_send_data(value1=counter * scale, value2=counter * 2 * scale,
                                 value3=counter, value4=base + counter,
                                 flags=flags | (counter % 16))
            counter += 1
        recv_data = device.get_recv_data()
        with print_lock:
            print("\n" + "=" * 60)
            print(f"DEVICE {name} STATUS")
            device.print_status()
            print(f"[Device {name}] Received from {partner}: {recv_data}")
        link = "down" if device.receiver.error else "up"
        received = device.receiver.get_stats().total_packets_received
        results[name] = f"link {link}, {received} packets received, partner value4 " \
                        f"{recv_data.value4}"
    finally:
        device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run")
    args = parser.parse_args()
    print("=" * 60)
    print("NETFLUX BIDIRECTIONAL COMMUNICATION TEST")
    print("=" * 60)
    device_a = threading.Thread(target=run_device, args=("A", 24400, 24401, 1.1, 1000, 0xA0, "B"))
    device_b = threading.Thread(target=run_device, args=("B", 24401, 24400, 3.3, 2000, 0xB0, "A"))
    device_a.start()
    time.sleep(0.5)                        # Device A first, as in Netflux's example
    device_b.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        print("\nShutting down both devices...")
    stop.set()
    device_a.join()
    device_b.join()
    for name in ("A", "B"):
        print(f"Device {name}: {results.get(name, 'did not run')}")


if __name__ == "__main__":
    main()
