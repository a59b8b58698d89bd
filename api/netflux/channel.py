"""The netflux channel handle: latest-value process images in the kind area.

``pool.open_channel(name, kind="netflux", options={...})`` returns a
:class:`NetfluxChannel`.  The worker sends the send image every ``send_interval`` on
an absolute schedule and publishes every valid received image; this handle writes and
reads those images (seqlocks, written and read in C so a half-written image is never
seen), waits for updates and watchdog events without the GIL, and reads the kind's
counters.
"""
from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.errors import RtUdpError
from rtudp.shmring.hist import Histogram
from rtudp.shmring.netflux_area import LINK_NAMES, nf_area

from ..handles import KindHandle

#: a writer holding the send image longer than this died mid-write: take it over
TAKEOVER_NS = 100_000_000
READ_TRIES = 100_000
WAIT_SLICE_NS = 200_000_000  # long waits in slices: Ctrl-C is seen between them


class Image(NamedTuple):
    """One process image as the worker published it.

    ``stamp_ns``: the kernel receive stamp (CLOCK_MONOTONIC ns) for a received image,
    the write time for the send image; ``seq``/``feedback`` the packet's sequence and
    feedback bytes; ``updates`` how many images the slot has held so far.
    """

    data: bytes
    stamp_ns: int
    seq: int
    feedback: int
    updates: int


def _deadline(timeout: float | None) -> int:
    if timeout is None:
        return 2**63 - 1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")
    return time.monotonic_ns() + int(timeout * 1e9)


class NetfluxChannel(KindHandle):
    """One process's handle on a netflux channel."""

    KIND = lib.RTUDP_KIND_NETFLUX
    HANDLE_NAME = "rtudp.netflux.NetfluxChannel"
    NO_BATCH = ("it exchanges the latest process image each cycle (read(), wait_update(), "
                "write()), not a queue of datagrams")

    def _open_views(self, cfg: dict[str, Any]) -> None:
        seg = self._seg
        self._a = nf_area(seg.area, seg.area_bytes, f"channel {self.name!r}")
        c = self._a.config
        self.send_size = int(c.send_size)
        self.recv_size = int(c.recv_size)
        self.send_interval = int(c.send_interval_ns) / 1e9
        self.watch_interval = int(c.watch_interval_ns) / 1e9
        self.keep_values_on_timeout = bool(c.flags & lib.RTUDP_NF_KEEP_VALUES)
        self.local: tuple[str, int] | None = cfg["local"]
        self.remote: tuple[str, int] | None = cfg["remote"]
        self._scratch = threading.local()  # each thread's buffer and meta for reads

    # ------------------------------------------------------------ images

    def write(self, data: bytes) -> None:
        """Make ``data`` (exactly ``send_size`` bytes) the send image: the worker's next
        packets carry it.  Never half-written, whatever the worker reads meanwhile."""
        self._check_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"image must be bytes, not {type(data).__name__}")
        if len(data) != self.send_size:
            raise ValueError(f"image of {len(data)} bytes: channel {self.name!r} sends "
                             f"{self.send_size}-byte images")
        rc = lib.rtudp_nf_image_write(ffi.addressof(self._a, "send_image"), bytes(data),
                                      len(data), time.monotonic_ns(), 0, TAKEOVER_NS)
        if rc != lib.RTUDP_OK:
            raise RtUdpError(f"channel {self.name!r}: send image not written (code {rc})")

    def _read_scratch(self) -> tuple[Any, Any]:
        """This thread's buffer and meta for reads: a read runs without the GIL, and
        another thread's read of the same handle would write shared ones meanwhile (its
        updates count beside this read's data: an empty image taken for a real one)."""
        s = getattr(self._scratch, "s", None)
        if s is None:
            s = self._scratch.s = (ffi.new("uint8_t[]", lib.RTUDP_NF_MAX_PAYLOAD),
                                   ffi.new("struct rtudp_nf_image_meta *"))
        return s

    def _read(self, field: str) -> Image:
        self._check_open()
        buf, m = self._read_scratch()
        n = lib.rtudp_nf_image_read(ffi.addressof(self._a, field), buf,
                                    lib.RTUDP_NF_MAX_PAYLOAD, m, READ_TRIES)
        if n < 0:
            raise RtUdpError(f"channel {self.name!r}: {field} busy after {READ_TRIES} tries")
        return Image(bytes(ffi.buffer(buf, n)), int(m.stamp_ns), int(m.tag) & 0xFF,
                     (int(m.tag) >> 8) & 0xFF, int(m.updates))

    def read(self) -> Image:
        """The latest received image (``updates`` 0 and zero bytes before the first)."""
        img = self._read("recv_image")
        if img.updates == 0:
            return img._replace(data=bytes(self.recv_size))
        return img

    def read_sent(self) -> Image:
        """The send image as the worker will send it next."""
        img = self._read("send_image")
        return img._replace(data=img.data.ljust(self.send_size, b"\0"))

    # ------------------------------------------------------------ waiting

    @property
    def events(self) -> int:
        """Received images + link transitions so far (see :meth:`wait_event`)."""
        return int(self._a.rx.events)

    def wait_event(self, seen: int, timeout: float | None = None) -> int:
        """Wait until :attr:`events` differs from ``seen`` (a new image or a watchdog
        transition) or ``timeout`` s pass; returns :attr:`events` as it then is.
        The wait runs in C without the GIL."""
        self._check_open()
        deadline = _deadline(timeout)
        while True:
            step = min(deadline, time.monotonic_ns() + WAIT_SLICE_NS)
            now = int(lib.rtudp_nf_wait_events(self._a, seen, step))
            if now != seen or step >= deadline or self._seg.closed:
                return now

    def wait_update(self, timeout: float | None = None, after: int | None = None) -> Image:
        """The next received image after update number ``after`` (None: the current
        one); TimeoutError if none comes within ``timeout`` s."""
        deadline = _deadline(timeout)
        last = self.read().updates if after is None else after
        seen = self.events
        while True:
            img = self.read()
            if img.updates != last:
                return img
            left = deadline - time.monotonic_ns()
            if left <= 0:
                raise TimeoutError(f"no new image on netflux channel {self.name!r} within "
                                   f"{timeout} s")
            seen = self.wait_event(seen, left / 1e9)

    # ------------------------------------------------------------ state and statistics

    @property
    def link(self) -> str:
        """``"waiting"`` (no valid packet yet), ``"up"`` or ``"lost"`` (watchdog)."""
        return LINK_NAMES.get(int(self._a.rx.link), "?")

    def stats(self) -> dict[str, Any]:
        """The kind's counters (``nf_*``: sent, missed cycles, rejected by reason, partner
        and feedback loss, watchdog trips/recoveries, RTT and interval percentiles in
        ns) and the channel's own (tx_packets, tx_lateness_* = departure - schedule)."""
        self._check_open()
        return self._seg.stats()

    def histograms(self) -> dict[str, Histogram]:
        """Snapshots: ``own_interval``, ``partner_interval``, ``rtt``, ``tx_lateness``."""
        self._check_open()
        out = {k: v for k, v in self._seg.kind_values().items() if isinstance(v, Histogram)}
        out["tx_lateness"] = self._seg.tx_lateness()
        return out

    # ------------------------------------------------------------ closing

    def _drop_views(self) -> None:
        self._a = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.link
        return (f"<NetfluxChannel {self.name!r} pool={self.pool!r} local={self.local} "
                f"remote={self.remote} {state}>")


__all__ = ["Image", "NetfluxChannel", "TAKEOVER_NS"]
