"""``rtudp tap CHANNEL -w FILE.pcapng``: a pcapng capture of what a channel sends and
receives, as its worker saw it.

Every datagram in both directions with the kernel's stamps (departure for sent ones,
arrival for received ones) at nanosecond resolution, wrapped in the IPv4/IPv6 and
UDP headers of the channel's addresses, each marked inbound or outbound.  ``-w -``
writes to stdout (``rtudp tap a -w - | wireshark -k -i -``).  Packets are written
in time order, ~50 ms after they happened (a sent datagram reaches the tap once its
kernel TX stamp has come).  A tap that cannot keep up loses packets, never slows the
channel: the Interface Statistics Block at the end says how many (``isb_ifdrop``),
as does the channel's ``tap_lost`` in ``stats()``.
"""
from __future__ import annotations

import argparse
import heapq
import ipaddress
import os
import signal
import socket
import sys
import time
from typing import Any, BinaryIO

from rtudp.shmring.control import ControlSegment
from rtudp.shmring.errors import BadSegmentError, PoolNotRunningError
from rtudp.shmring.kinds import find
from rtudp.shmring.tap import Tap, TapPacket

from .cli_errors import attach, cli_error
from .pcapng import PcapngWriter, ip_udp_packet
from .procinfo import realtime_offset_ns
from .stats_cli import positive

#: how long a packet waits before it is written: a sent datagram comes in once its TX
#: stamp has (the worker waits 5 ms for one at most), so an earlier departure can
#: arrive after a later arrival; held this long, the file is in time order
HOLD_NS = 50_000_000
#: how long one wait for packets lasts (the channel's presence is checked between)
POLL_S = 0.02
#: how often the tap checks that its channel still exists
CHECK_NS = 1_000_000_000


class Addresses:
    """The IP addresses a channel's packets carry: its bound address, or for a wildcard
    bind the one the kernel would send from to reach each peer (as the packets had)."""

    def __init__(self, local: tuple[str, int]) -> None:
        self.local = local
        self.family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        self.wildcard = ipaddress.ip_address(local[0]).is_unspecified
        self._cache: dict[str, str] = {}

    def peer(self, peer: tuple[str, int] | None) -> tuple[str, int]:
        """The peer in the channel's family (IPv4 peers of an IPv6 socket are mapped)."""
        if peer is None:
            return ("::" if self.family == socket.AF_INET6 else "0.0.0.0", 0)
        if self.family == socket.AF_INET6 and ":" not in peer[0]:
            return (f"::ffff:{peer[0]}", peer[1])
        return peer

    def our(self, peer: tuple[str, int]) -> tuple[str, int]:
        """Our address toward ``peer``."""
        if not self.wildcard:
            return self.local
        host = self._cache.get(peer[0])
        if host is None:
            host = self.local[0]
            try:
                with socket.socket(self.family, socket.SOCK_DGRAM) as s:
                    s.connect((peer[0], peer[1] or 9))
                    host = s.getsockname()[0]
            except OSError:
                pass
            self._cache[peer[0]] = host
        return (host, self.local[1])


class Capture:
    """Packets from a :class:`Tap` into a :class:`PcapngWriter`, in time order."""

    def __init__(self, tap: Tap, writer: PcapngWriter) -> None:
        self.tap = tap
        self.writer = writer
        self.addr = Addresses(tap.config["local"] or ("0.0.0.0", 0))
        self.offset_ns = realtime_offset_ns()
        self.held: list[tuple[int, int, TapPacket]] = []
        self._flows: dict[Any, tuple[tuple[str, int], tuple[str, int]]] = {}
        self.order = 0
        self.sent = self.received = 0
        self.start_ns = time.monotonic_ns()

    def take(self, until_ns: int | None = None) -> int:
        """Read what waits; hold it; return how many came."""
        pkts = self.tap.read()
        for p in pkts:
            if until_ns is not None and p.time_ns > until_ns:
                continue
            heapq.heappush(self.held, (p.time_ns, self.order, p))
            self.order += 1
        return len(pkts)

    def write_due(self, now_ns: int | None, limit: int | None) -> None:
        """Write held packets older than HOLD_NS (all with now_ns None), at most up to
        ``limit`` packets in the file."""
        while self.held and (limit is None or self.writer.packets < limit):
            if now_ns is not None and self.held[0][0] > now_ns - HOLD_NS:
                break
            self._write(heapq.heappop(self.held)[2])

    def _ends(self, peer: tuple[str, int] | None, outbound: bool
              ) -> tuple[tuple[str, int], tuple[str, int]]:
        """(source, destination) of a packet to or from ``peer`` (cached: few per capture)."""
        key = (peer, outbound)
        ends = self._flows.get(key)
        if ends is None:
            other = self.addr.peer(peer)
            ours = self.addr.our(other)
            ends = self._flows[key] = (ours, other) if outbound else (other, ours)
        return ends

    def _write(self, p: TapPacket) -> None:
        src, dst = self._ends(p.peer, p.outbound)
        pkt = ip_udp_packet(src, dst, p.data, p.wire_len, ip_id=self.writer.packets)
        orig = len(pkt) - len(p.data) + p.wire_len
        comment = None if p.kernel_stamp else (
            "time of the send call (no kernel TX stamp)" if p.outbound
            else "time of the receive call (no kernel RX stamp)")
        self.writer.packet(p.time_ns + self.offset_ns, pkt, orig, p.outbound, comment)
        if p.outbound:
            self.sent += 1
        else:
            self.received += 1

    def finish(self) -> None:
        """The statistics block: what was seen, lost and written."""
        end = time.monotonic_ns()
        dropped = self.tap.dropped
        written = self.writer.packets
        self.writer.statistics(end + self.offset_ns, self.start_ns + self.offset_ns,
                               end + self.offset_ns, written + dropped, dropped, written)
        self.writer.flush()


def _channel_present(pool: str, channel: str) -> bool:
    try:
        ctl = ControlSegment.open(pool, writable=False)
    except (PoolNotRunningError, BadSegmentError):
        return False
    try:
        return ctl.find_channel(channel) is not None
    finally:
        ctl.close()


def describe(tap: Tap) -> str:
    """The interface description: the channel, its kind and addresses."""
    cfg = tap.config
    kind = find(cfg["kind"])
    name = kind.name if kind else f"kind {cfg['kind']}"
    local = cfg["local"]
    remote = cfg["remote"]
    where = f"{local[0]}:{local[1]}" if local else "?"
    if remote:
        where += f" <-> {remote[0]}:{remote[1]}"
    return (f"rtudp {name} channel {tap.channel!r} of pool {tap.pool!r} ({where}); "
            f"times are the kernel's stamps (CLOCK_MONOTONIC + the REALTIME offset at start)")


def capture(tap: Tap, out: BinaryIO, count: int | None = None,
            seconds: float | None = None) -> Capture:
    """Write what ``tap`` sees to ``out`` until ``count`` packets are written,
    ``seconds`` have passed, the channel goes away or SIGINT / SIGTERM comes."""
    writer = PcapngWriter(out, f"rtudp:{tap.pool}.{tap.channel}", describe(tap))
    writer.flush()
    cap = Capture(tap, writer)
    stop = {"now": False}

    def on_signal(_sig: int, _frame: Any) -> None:
        stop["now"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    end_ns = None if seconds is None else cap.start_ns + int(seconds * 1e9)
    next_check = cap.start_ns + CHECK_NS
    try:
        while not stop["now"]:
            now = time.monotonic_ns()
            if end_ns is not None and now >= end_ns:
                break
            if count is not None and writer.packets >= count:
                break
            if now >= next_check:
                next_check = now + CHECK_NS
                if not _channel_present(tap.pool, tap.channel):
                    print(f"rtudp tap: channel {tap.channel!r} of pool {tap.pool!r} closed",
                          file=sys.stderr)
                    break
            if not cap.take(end_ns):
                tap.wait(POLL_S)
                cap.take(end_ns)
            before = writer.packets
            cap.write_due(time.monotonic_ns(), count)
            if writer.packets != before:
                writer.flush()
        # sent datagrams still waiting for their TX stamp: give them the hold to come
        settle = time.monotonic_ns() + HOLD_NS
        while count is None or writer.packets + len(cap.held) < count:
            if time.monotonic_ns() >= settle:
                break
            if not cap.take(end_ns):
                time.sleep(0.005)
        cap.write_due(None, count)
        cap.finish()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return cap


def add_parser(sub: Any) -> None:
    """``rtudp tap`` on the CLI's subparsers."""
    from .pool_cli import default_pool, parse_pool_name

    p = sub.add_parser("tap", help="capture a channel's packets to pcapng (Wireshark, tshark)",
                       description="A pcapng capture of what a channel sends and "
                       "receives, with the kernel's timestamps (-w - for stdout).")
    p.add_argument("channel", help="channel name")
    p.add_argument("--pool", type=parse_pool_name, default=default_pool(),
                   help="pool name (default: $RTUDP_POOL or 'default')")
    p.add_argument("-w", dest="file", required=True, metavar="FILE",
                   help="the pcapng file to write; - for stdout")
    p.add_argument("--count", type=positive(int, "--count"), metavar="N",
                   help="stop after N packets (both directions)")
    p.add_argument("--seconds", type=positive(float, "--seconds"), metavar="S",
                   help="stop after S seconds")
    p.set_defaults(func=run)


def _err(msg: str) -> int:
    return cli_error("tap", msg)


def run(args: argparse.Namespace, _rest: list[str]) -> int:
    """Run ``rtudp tap``."""
    tap = attach("tap", args, lambda pool, channel: Tap(channel, pool))
    if tap is None:
        return 1
    try:
        to_stdout = args.file == "-"
        try:
            out: BinaryIO = sys.stdout.buffer if to_stdout else open(args.file, "wb")
        except OSError as exc:
            return _err(f"cannot write -w {args.file!r}: {exc}")
        try:
            cap = capture(tap, out, args.count, args.seconds)
        except BrokenPipeError:
            # the reader (wireshark, head) went away: that ends the capture (and
            # nothing more may go to that pipe, not even at exit)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        finally:
            if not to_stdout:
                out.close()
        lost, lapped = tap.dropped, tap.lost
        why = f" ({lapped} the tap was too slow for, {lost - lapped} not mirrored)" if lost else ""
        print(f"rtudp tap: {cap.writer.packets} packets ({cap.sent} sent, {cap.received} "
              f"received) of channel {args.channel!r} written to "
              f"{'stdout' if to_stdout else args.file}; {lost} lost{why}", file=sys.stderr)
        return 0
    finally:
        tap.close()


__all__ = ["Capture", "add_parser", "capture", "run"]
