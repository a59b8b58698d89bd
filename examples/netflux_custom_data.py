"""Netflux's "Customizing Data Structure" on rtudp: a dataclass with ``to_bytes``,
``from_bytes`` and ``get_size`` defines the image two instances exchange.

    python examples/netflux_custom_data.py
"""
import struct
from dataclasses import dataclass

from rtudp.compat.netflux_main import NetfluxMain


@dataclass
class Measurement:
    """A temperature, a pressure and a status word: 12 bytes, little endian."""

    temperature: float = 0.0
    pressure: float = 0.0
    status: int = 0

    def to_bytes(self) -> bytes:
        return struct.pack("<ffI", self.temperature, self.pressure, self.status)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Measurement":
        return cls(*struct.unpack("<ffI", data[:12]))

    @staticmethod
    def get_size() -> int:
        return 12


plant = NetfluxMain(local_port=24420, remote_port=24421, local_ip="127.0.0.1",
                    send_interval=0.010, watch_interval=0.050, data=Measurement)
control = NetfluxMain(local_port=24421, remote_port=24420, local_ip="127.0.0.1",
                      send_interval=0.010, watch_interval=0.050, data=Measurement)
with plant, control:                       # start() on entry, stop() on exit
    plant.set_send_data(temperature=21.5, pressure=1.013, status=7)
    seen = control.wait_update(timeout=5.0)
    while seen.status != 7:
        seen = control.wait_update(timeout=5.0)
    print(f"control received {seen}")
