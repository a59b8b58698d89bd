"""``NetfluxMain``: the reference implementation's API over a netflux worker channel.

The reference sends and watches from Python threads that sleep; here the worker does
the cycle (absolute schedule, kernel receive stamps) and this class only writes and
reads images.  Same names: ``start``, ``stop``, ``set_send_data(**fields)``,
``get_recv_data()``, ``print_status()``, ``receiver``/``sender`` with ``error`` and
``error_message``, ``statistics.get_stats()``.  Added: ``wait_update(timeout)``, and
``on_data`` / ``on_watchdog`` callbacks (run on one thread of this object).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import warnings
from typing import Any, Callable, Sequence

from rtudp.workers.netflux_kind import check_options

from .channel import NetfluxChannel
from .codec import ImageCodec, as_codec
from .data import (NetfluxData, NetfluxStatistics, ReceiverStats, SenderStats,
                   receiver_stats_of, sender_stats_of, statistics_of)

_names = itertools.count()
STALL_NS = 50_000_000  # the sender is in error when nothing left for this long (or 3 cycles)


#: an interval above this many seconds is more likely milliseconds given as seconds
LONG_INTERVAL_S = 10.0


class NetfluxIntervalWarning(UserWarning):
    """Intervals the reference accepts that are likely a mistake (milliseconds given as
    seconds, a watchdog that trips on one late packet)."""


def interval_warnings(send_interval: float, watch_interval: float) -> list[str]:
    """What is suspicious about these intervals (seconds), one sentence each."""
    out = [f"{name}={value!r} is {value:g} s: NetfluxMain takes seconds "
           f"({name}={value / 1000:g} is {value:g} ms)"
           for name, value in (("send_interval", send_interval),
                               ("watch_interval", watch_interval))
           if isinstance(value, (int, float)) and value > LONG_INTERVAL_S]
    if (isinstance(send_interval, (int, float)) and isinstance(watch_interval, (int, float))
            and 0 < watch_interval < 2 * send_interval):
        out.append(f"watch_interval={watch_interval!r} s is shorter than two send_intervals "
                   f"(2 x {send_interval!r} s): the watchdog trips whenever one packet is "
                   f"late or lost; use watch_interval >= {2 * send_interval:g} (the "
                   f"defaults are send_interval=0.005, watch_interval=0.030)"
                   + (f"; intervals are seconds: send_interval={send_interval!r} is "
                      f"{send_interval:g} s, {send_interval:g} ms is "
                      f"{send_interval / 1000:g}" if send_interval >= 1 else ""))
    return out


class _Side:
    """One side's status view of a :class:`NetfluxMain`'s channel."""

    def __init__(self, main: "NetfluxMain") -> None:
        self._m = main

    def _stats(self) -> dict[str, Any]:
        return self._m.channel.stats() if self._m.channel is not None else {}


class _Receiver(_Side):
    """Receive side status, as the reference's ``NetfluxReceiver`` shows it."""

    @property
    def error(self) -> bool:
        """True unless valid packets arrive within the watchdog interval."""
        ch = self._m.channel
        return ch is None or ch.closed or ch.link != "up"

    @property
    def error_message(self) -> str:
        """Why :attr:`error` is set ("" when it is not)."""
        ch = self._m.channel
        if ch is None or ch.closed:
            return self._m.start_error or "not started"
        return {"up": "", "waiting": "no valid packet received yet",
                "lost": f"watchdog: no valid packet within {ch.watch_interval * 1e3:g} ms"
                }.get(ch.link, ch.link)

    @property
    def partner_seq_number(self) -> int:
        """Sequence byte of the partner's last valid packet."""
        return int(self._stats().get("nf_partner_seq", 0))

    @property
    def current_feedback_seq_number(self) -> int:
        """The feedback byte of the partner's last valid packet (our sequence it saw)."""
        return int(self._stats().get("nf_partner_feedback", 0))

    def get_stats(self) -> ReceiverStats:
        """Counts of received, rejected (by reason) and watchdog events."""
        return receiver_stats_of(self._stats())


class _Sender(_Side):
    """Send side status, as the reference's ``NetfluxSender`` shows it."""

    @property
    def error(self) -> bool:
        """True when not running or when the last send failed."""
        return bool(self.error_message)

    @property
    def error_message(self) -> str:
        """Why :attr:`error` is set ("" when it is not)."""
        ch = self._m.channel
        if ch is None or ch.closed:
            return self._m.start_error or "not started"
        st = self._stats()
        if not st.get("nf_sent"):
            return ""  # the first packet may not be due yet
        age = time.monotonic_ns() - int(st["nf_last_sent_ns"])
        if age > max(3 * ch.send_interval * 1e9, STALL_NS):
            return (f"no packet sent for {age / 1e6:.1f} ms ({st.get('nf_send_errors', 0)} "
                    f"sends failed)")
        return ""

    @property
    def sequence_number(self) -> int:
        """Sequence byte of our last packet."""
        return int(self._stats().get("nf_seq", 0))

    def get_stats(self) -> SenderStats:
        """Packets sent, failed, and cycles skipped because the worker was late."""
        return sender_stats_of(self._stats())


class _Statistics:
    """``statistics.get_stats()`` of the reference, measured by the worker."""

    def __init__(self, main: "NetfluxMain") -> None:
        self._m = main

    def get_stats(self) -> NetfluxStatistics:
        """Mean intervals, last RTT (ms) and loss counts."""
        ch = self._m.channel
        if ch is None or ch.closed:
            return NetfluxStatistics()
        return statistics_of(ch.stats())


class NetfluxMain:
    """Cyclic image exchange with one partner, driven by an rtudp worker.

    ``data`` defines the image: a dataclass type with ``to_bytes``/``from_bytes``/
    ``get_size`` (default :class:`NetfluxData`), a struct format with ``fields``, or an
    :class:`ImageCodec`; ``recv_data``/``recv_fields`` when the partner's differs.
    ``pool``: a ``rtudp.Pool`` (or ``PoolClient``) to open the channel on, a pool name,
    or None (``$RTUDP_POOL``/``"default"``, started in this program if not running).
    """

    def __init__(self, local_port: int = 2000, remote_ip: str = "127.0.0.1",
                 remote_port: int = 2000, send_interval: float = 0.005,
                 watch_interval: float = 0.030, keep_values_on_timeout: bool = False, *,
                 data: Any = NetfluxData, fields: Sequence[str] | None = None,
                 recv_data: Any = None, recv_fields: Sequence[str] | None = None,
                 local_ip: str = "0.0.0.0", pool: Any = None, name: str | None = None,
                 cpu: int | None = None, start_ns: int = 0,
                 on_data: Callable[[Any], None] | None = None,
                 on_watchdog: Callable[[str], None] | None = None) -> None:
        self.send_codec: ImageCodec = as_codec(data, fields)
        self.recv_codec: ImageCodec = (self.send_codec if recv_data is None
                                       else as_codec(recv_data, recv_fields))
        for what, v in (("local_port", local_port), ("remote_port", remote_port)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
                raise ValueError(f"{what} must be a port number 0..65535, not {v!r}")
        self.local_port, self.remote_ip, self.remote_port = local_port, remote_ip, remote_port
        self.local_ip = local_ip
        self.send_interval, self.watch_interval = send_interval, watch_interval
        self.keep_values_on_timeout = keep_values_on_timeout
        self.options = {"send_interval": send_interval, "watch_interval": watch_interval,
                        "send_size": self.send_codec.size, "recv_size": self.recv_codec.size,
                        "keep_values_on_timeout": keep_values_on_timeout, "start_ns": start_ns}
        check_options(self.options)  # bad values fail here, before anything opens
        for message in interval_warnings(send_interval, watch_interval):
            warnings.warn(message, NetfluxIntervalWarning, stacklevel=2)
        self.pool, self.cpu = pool, cpu
        self.name = name or f"netflux-{os.getpid()}-{next(_names)}"
        self.on_data, self.on_watchdog = on_data, on_watchdog
        self.channel: NetfluxChannel | None = None
        self.start_error = ""
        self._send_values = dict(self.send_codec.defaults)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.receiver = _Receiver(self)
        self.sender = _Sender(self)
        self.statistics = _Statistics(self)

    # ------------------------------------------------------------ start / stop

    def _open(self) -> NetfluxChannel:
        args: dict[str, Any] = dict(local=(self.local_ip, self.local_port),
                                    remote=(self.remote_ip, self.remote_port),
                                    kind="netflux", options=self.options, cpu=self.cpu,
                                    max_datagram=2 + max(self.send_codec.size,
                                                         self.recv_codec.size, 1))
        if self.pool is not None and hasattr(self.pool, "open_channel"):
            return self.pool.open_channel(self.name, **args)
        from rtudp.embedded import open_channel
        return open_channel(self.name, pool=self.pool, **args)

    def start(self) -> bool:
        """Open the channel and start the cycle; False (with ``receiver.error_message``
        / ``sender.error_message`` saying why) if that fails, as the reference does."""
        if self.channel is not None and not self.channel.closed:
            return True
        try:
            self.channel = self._open()
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            self.start_error = f"cannot open netflux channel {self.name!r}: {exc}"
            return False
        self.start_error = ""
        self.channel.write(self.send_codec.encode(self._send_values))
        if self.on_data is not None or self.on_watchdog is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._dispatch, name=f"{self.name}-events",
                                            daemon=True)
            self._thread.start()
        return True

    def stop(self) -> None:
        """Stop the cycle and close the channel (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.channel is not None:
            self.channel.close()

    def __enter__(self) -> "NetfluxMain":
        if not self.start():
            raise RuntimeError(self.start_error)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _running(self) -> NetfluxChannel:
        if self.channel is None or self.channel.closed:
            raise RuntimeError(f"netflux {self.name!r} is not running: call start()")
        return self.channel

    # ------------------------------------------------------------ images

    def set_send_data(self, **fields: Any) -> None:
        """Change fields of the send image (ValueError naming an unknown field or a value
        that does not fit); the next packet carries the whole image."""
        new = {**self._send_values, **self.send_codec.check_fields(fields)}
        payload = self.send_codec.encode(new)
        with self._lock:
            self._send_values = new
            if self.channel is not None and not self.channel.closed:
                self.channel.write(payload)

    def get_send_data(self) -> Any:
        """The send image as set so far."""
        return self.send_codec.decode(self.send_codec.encode(self._send_values))

    def get_recv_data(self) -> Any:
        """The latest received image (zeros before the first, and after a watchdog trip
        unless keep_values_on_timeout)."""
        return self.recv_codec.decode(self._running().read().data)

    def wait_update(self, timeout: float | None = None) -> Any:
        """Block (without the GIL) until a new image arrives; TimeoutError after
        ``timeout`` s."""
        return self.recv_codec.decode(self._running().wait_update(timeout).data)

    # ------------------------------------------------------------ callbacks

    def _dispatch(self) -> None:
        ch = self.channel
        assert ch is not None
        # a channel starts "waiting": its first "up" is reported even if it came already
        seen, updates, link = ch.events, ch.read().updates, "waiting"
        while not self._stop.is_set():
            seen = ch.wait_event(seen, 0.1)
            if self._stop.is_set():
                return
            img = ch.read()
            now_link = ch.link
            if now_link != link and self.on_watchdog is not None:
                self.on_watchdog(now_link)
            link = now_link
            if img.updates != updates and self.on_data is not None:
                self.on_data(self.recv_codec.decode(img.data))
            updates = img.updates

    # ------------------------------------------------------------ status

    def print_status(self) -> None:
        """Print status and statistics (the reference's layout)."""
        r, s = self.receiver, self.sender
        rs, ss, st = r.get_stats(), s.get_stats(), self.statistics.get_stats()
        lines = ["", "=" * 60, "NETFLUX STATUS", "=" * 60, "", "[RECEIVER]",
                 f"  Error: {r.error}"]
        if r.error:
            lines.append(f"  Error Message: {r.error_message}")
        lines += [f"  Partner Seq #: {r.partner_seq_number}",
                  f"  Feedback Seq #: {r.current_feedback_seq_number}",
                  f"  Packets Received: {rs.total_packets_received}",
                  f"  Packets Rejected: {rs.total_packets_rejected} (duplicate {rs.duplicates},"
                  f" old {rs.old}, short {rs.short})",
                  f"  Watchdog Timeout: {rs.watchdog_timeout} (trips {rs.watchdog_trips}, "
                  f"recoveries {rs.recoveries})", "", "[SENDER]", f"  Error: {s.error}"]
        if s.error:
            lines.append(f"  Error Message: {s.error_message}")
        lines += [f"  Own Seq #: {s.sequence_number}",
                  f"  Packets Sent: {ss.total_packets_sent}",
                  f"  Send Errors: {ss.total_send_errors}", "", "[STATISTICS]",
                  f"  Avg Partner Interval: {st.avg_partner_interval:.3f} ms "
                  f"(jitter {st.partner_jitter:.3f} ms)",
                  f"  Avg Own Interval: {st.avg_own_interval:.3f} ms "
                  f"(jitter {st.own_jitter:.3f} ms)",
                  f"  Last RTT: {st.last_rtt:.3f} ms (p99 {st.rtt_p99:.3f} ms)",
                  f"  Partner Lost Packets: {st.total_partner_lost_packets}",
                  f"  Feedback Lost Packets: {st.total_feedback_lost_packets}", "", "[DATA]",
                  f"  Send: {self.get_send_data()}"]
        if self.channel is not None and not self.channel.closed:
            lines.append(f"  Recv: {self.get_recv_data()}")
        lines += ["=" * 60, ""]
        print("\n".join(lines))


__all__ = ["LONG_INTERVAL_S", "NetfluxIntervalWarning", "NetfluxMain", "interval_warnings"]
