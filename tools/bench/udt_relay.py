"""The impairment relay in C (``udt_relay.c``, shipped next to this file and built at run
time with ``cc``) for the udt tests and ``rtudp bench udt``.

:class:`CRelay` forwards UDP between one client and a server on loopback, both ways,
dropping (seeded), delaying, jittering and reordering datagrams, and counts what it
did.  It has the interface of the tests' Python ``WatchRelay`` (tests/udt_helpers.py) (``port``,
``passed``, ``dropped``, ``close``) and forwards at loopback speed in batches, where the
Python one, one thread of the caller's process, caps at about 100 Mb/s and takes the
CPU the process under test needs.

A WAN path: ``rate_mbps`` puts a bottleneck link in each direction, with a drop-tail
queue of ``queue_pkts`` datagrams and/or ``queue_wait`` s of waiting (udt_relay.c says the
model); :func:`bdp_packets` sizes a queue of one bandwidth-delay product.
"""
from __future__ import annotations

import select
import shutil
import subprocess
from pathlib import Path

from .udt_peer import PeerUnavailable, build_cached

HERE = Path(__file__).resolve().parent
RELAY_SRC = HERE / "udt_relay.c"


def build_relay(out_dir: Path | None = None) -> Path:
    """The relay program, built once per source version; PeerUnavailable without cc."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise PeerUnavailable("no C compiler to build the relay (apt-get install gcc)")
    return build_cached("udt_relay", [RELAY_SRC],
                        [cc, "-std=c11", "-O2", "-Wall", "-Wextra", str(RELAY_SRC)], out_dir)


def _us(name: str, seconds: float) -> str:
    if not seconds >= 0:
        raise ValueError(f"relay {name}={seconds!r}: must be >= 0 s")
    return f"{name}_us={seconds * 1e6:.0f}"


def bdp_packets(rate_mbps: float, rtt_s: float, datagram: int = 1500) -> int:
    """One bandwidth-delay product of ``rate_mbps`` over ``rtt_s`` in datagrams of
    ``datagram`` bytes on the wire (UDT's 1500 MSS)."""
    return max(1, round(rate_mbps * 1e6 * rtt_s / 8 / datagram))


def _fraction(name: str, p: float) -> str:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"relay {name}={p!r}: must be 0 .. 1")
    return f"{name}={p!r}"


class CRelay:
    """A UDP relay on loopback between one client and ``server``, in a process of its
    own: drops ``loss`` of the datagrams each way (``loss_back`` for server -> client
    when given) at random from ``seed``, delays each by ``delay`` s plus up to
    ``jitter`` s, and holds ``reorder`` of them back by a further ``reorder_gap`` s so
    later ones overtake them.  ``rate_mbps`` (> 0) adds a bottleneck each way with a
    drop-tail queue of ``queue_pkts`` datagrams and/or ``queue_wait`` s of waiting.
    ``port`` is where clients connect to."""

    def __init__(self, server: tuple[str, int], loss: float = 0.0, delay: float = 0.0,
                 jitter: float = 0.0, seed: int = 1, reorder: float = 0.0,
                 reorder_gap: float = 0.001, loss_back: float | None = None,
                 rate_mbps: float = 0.0, queue_pkts: int = 0, queue_wait: float = 0.0,
                 exe: Path | None = None) -> None:
        if server[0] not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the relay serves loopback only, not {server[0]!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"relay seed={seed!r}: a non-negative int")
        args = [_fraction("loss", loss), _us("delay", delay), _us("jitter", jitter),
                _fraction("reorder", reorder), _us("reorder_gap", reorder_gap), f"seed={seed}"]
        if loss_back is not None:
            args.append(_fraction("loss_back", loss_back))
        if rate_mbps:
            if not 0.001 <= rate_mbps <= 1e6:
                raise ValueError(f"relay rate_mbps={rate_mbps!r}: 0.001 .. 10^6")
            args.append(f"rate_mbps={rate_mbps!r}")
        if (queue_pkts or queue_wait) and not rate_mbps:
            raise ValueError("relay queue_pkts and queue_wait need rate_mbps")
        if queue_pkts:
            if not isinstance(queue_pkts, int) or not 1 <= queue_pkts <= 1 << 24:
                raise ValueError(f"relay queue_pkts={queue_pkts!r}: an int 1 .. 2^24")
            args.append(f"queue_pkts={queue_pkts}")
        if queue_wait:
            args.append(_us("queue", queue_wait))
        self.final: dict[str, int] | None = None
        self.proc = subprocess.Popen([str(exe or build_relay()), str(int(server[1])), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._line(10.0)
        if not line.startswith("port "):
            self.close()
            raise RuntimeError(f"the relay did not start: {line!r}")
        self.port = int(line.split()[1])

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"the relay said nothing for {timeout} s")
        return self.proc.stdout.readline().strip()

    @staticmethod
    def _parse(line: str) -> dict[str, int]:
        if not line.startswith("stats "):
            raise RuntimeError(f"the relay answered {line!r}, not its stats")
        return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

    def stats(self) -> dict[str, int]:
        """What it did so far, per direction (``fwd_*``: client -> server, ``back_*``):
        in, dropped, passed, reordered, overflow, errors, qdropped (the bottleneck's
        queue was full), qmax (the most its queue held); and ``held`` now."""
        if self.final is not None:
            return dict(self.final)
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return self._parse(self._line(10.0))

    @property
    def passed(self) -> int:
        """Datagrams forwarded, both ways."""
        s = self.stats()
        return s.get("fwd_passed", 0) + s.get("back_passed", 0)

    @property
    def dropped(self) -> int:
        """Datagrams dropped on purpose (loss) or for want of room, both ways."""
        s = self.stats()
        return sum(s.get(f"{d}_{k}", 0) for d in ("fwd", "back")
                   for k in ("dropped", "overflow", "qdropped"))

    def close(self) -> None:
        """Stop it (stdin closed: it prints its last stats and exits; killed by pid if
        it does not within 5 s); the counts stay readable."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                line = self._line(5.0)
                if line.startswith("stats "):
                    self.final = self._parse(line)
                self.proc.wait(5)
            except (OSError, RuntimeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.final is None:
            self.final = {}


__all__ = ["CRelay", "bdp_packets", "build_relay"]
