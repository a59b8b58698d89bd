"""Packets as numpy columns: :meth:`Channel.recv_batch` and :meth:`Channel.send_batch`.

A :class:`PacketBatch` holds one array per field (``rx_ns``, ``hw_ns``, ``seq``,
``length``, ``lost``, ``src_family``, ``src_addr``, ``src_port``) and every payload back
to back in one ``payload`` buffer with ``offsets`` (n + 1 entries: packet i is
``payload[offsets[i]:offsets[i+1]]``); ``data`` is the payloads as an (n, size) array
when every packet has the same size.  No Python object is made per packet: the C fast
path (csrc/pyfast/batch.c) writes each record's fields straight into the arrays.

numpy is an optional extra (``pip install 'rtudp[numpy]'``); nothing else in rtudp
needs it, and these two calls say so when it is missing.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from typing import TYPE_CHECKING, Any

from rtudp.shmring.deadline import Horizon

if TYPE_CHECKING:
    import numpy as np

#: what recv_batch reads at most per call when max_n is larger (the arrays are sized
#: max_n, so a huge max_n would allocate for nothing)
MAX_BATCH = 1 << 20


def numpy_module() -> Any:
    """numpy, or ImportError naming the extra that installs it."""
    try:
        import numpy
    except ImportError as exc:
        raise ImportError("recv_batch/send_batch need numpy, an optional extra of rtudp: "
                          "pip install 'rtudp[numpy]'") from exc
    return numpy


class PacketBatch:
    """Received datagrams as columns (numpy arrays of one length, ``len(batch)``).

    ``rx_ns`` (int64, kernel RX stamp as CLOCK_MONOTONIC ns), ``hw_ns`` (int64, raw
    hardware stamp, 0 if none), ``seq`` (uint64, the channel's receive sequence number),
    ``length`` (uint32, bytes), ``lost`` (uint64, packets this reader missed just before
    each one), ``src_family`` (uint16, AF_INET / AF_INET6 / 0), ``src_addr`` ((n, 16)
    uint8: the first 4 bytes for IPv4), ``src_port`` (uint16), ``offsets`` (int64, n + 1
    entries) into ``payload`` (uint8).
    """

    __slots__ = ("rx_ns", "hw_ns", "seq", "length", "lost", "src_family", "src_addr",
                 "src_port", "offsets", "payload")

    def __init__(self, columns: tuple, n: int) -> None:
        """Views of the first n rows of ``columns`` (new_columns' order) that
        ``_recv_batch`` filled."""
        (self.rx_ns, self.hw_ns, self.seq, self.length, self.lost, self.src_family,
         self.src_addr, self.src_port) = (c[:n] for c in columns[:8])
        self.offsets = columns[8][:n + 1]
        self.payload = columns[9][:int(self.offsets[n])]

    def __len__(self) -> int:
        return len(self.rx_ns)

    def __repr__(self) -> str:
        return f"<PacketBatch {len(self)} packets, {len(self.payload)} payload bytes>"

    @property
    def lost_total(self) -> int:
        """Packets this reader missed within and just before the batch."""
        return int(self.lost.sum())

    @property
    def data(self) -> "np.ndarray":
        """The payloads as an (n, size) uint8 view of ``payload`` when all have one size.

        ValueError when the sizes differ (``payload`` and ``offsets`` always work).
        """
        n = len(self)
        if n == 0:
            return self.payload.reshape(0, 0)
        size = int(self.length[0])
        if not (self.length == size).all():
            raise ValueError(f"the batch's {n} datagrams have sizes from {int(self.length.min())}"
                             f" to {int(self.length.max())} bytes: no 2-D view; use payload "
                             f"and offsets")
        return self.payload.reshape(n, size)

    def packet(self, i: int) -> bytes:
        """Datagram ``i``'s payload as bytes (one object: for a few, not for all)."""
        return bytes(self.payload[int(self.offsets[i]):int(self.offsets[i + 1])])

    def source(self, i: int) -> tuple[str, int] | None:
        """Datagram ``i``'s source as (host, port), None when the record names none."""
        fam = int(self.src_family[i])
        if fam == socket.AF_INET:
            host = str(ipaddress.IPv4Address(bytes(self.src_addr[i, :4])))
        elif fam == socket.AF_INET6:
            host = str(ipaddress.IPv6Address(bytes(self.src_addr[i])))
        else:
            return None
        return host, int(self.src_port[i])


def new_columns(max_n: int, max_datagram: int) -> tuple:
    """Empty arrays for up to max_n packets of at most max_datagram bytes."""
    np = numpy_module()
    return (np.empty(max_n, np.int64), np.empty(max_n, np.int64), np.empty(max_n, np.uint64),
            np.empty(max_n, np.uint32), np.empty(max_n, np.uint64), np.empty(max_n, np.uint16),
            np.empty((max_n, 16), np.uint8), np.empty(max_n, np.uint16),
            np.empty(max_n + 1, np.int64), np.empty(max_n * max_datagram, np.uint8))


def _refs(cols: tuple) -> list[int]:
    """The reference counts of the arrays of a column set (one way, so comparable)."""
    return [sys.getrefcount(c) for c in cols]


class ColumnCache:
    """Column sets for one reader's recv_batch, reused once no batch refers to them.

    A new set of arrays each call costs page faults for every page the batch fills (a
    fresh mapping of zero pages); a loop that drops each batch before the next but
    one (``for ...: batch = ch.recv_batch()``) keeps reusing two sets instead.  A set
    is free when no view of it is alive: its arrays' reference counts are back to
    what they were when only this cache held them.
    """

    SETS = 2

    def __init__(self) -> None:
        self._sets: list[tuple[tuple, int, int, list[int]]] = []

    def get(self, max_n: int, max_datagram: int) -> tuple:
        """A free column set for max_n packets of max_datagram bytes."""
        for cols, n, size, base in self._sets:
            if n == max_n and size == max_datagram and _refs(cols) == base:
                return cols
        cols = new_columns(max_n, max_datagram)
        entry = (cols, max_n, max_datagram, _refs(cols))
        self._sets = [entry, *self._sets[:self.SETS - 1]]
        return cols


def batch_arrays(buffer: Any, lengths: Any, at_ns: Any,
                 horizon: Horizon) -> tuple[Any, Any, int, Any]:
    """send_batch's arguments as (payload buffer, uint32 lengths, at_ns, per-packet at_ns
    int64 array or None), each checked (deadlines against ``horizon``: one clock read
    for the batch), with the bad value named."""
    np = numpy_module()
    data = np.ascontiguousarray(np.frombuffer(buffer, np.uint8) if isinstance(
        buffer, (bytes, bytearray, memoryview)) else np.asarray(buffer))
    if data.dtype != np.uint8:
        data = data.view(np.uint8) if data.dtype.itemsize == 1 else data.reshape(-1).view(np.uint8)
    if lengths is None:
        if data.ndim != 2:
            raise ValueError(f"send_batch: lengths=None needs a 2-D buffer (one row a datagram), "
                             f"got {data.ndim}-D of shape {data.shape}")
        lens = np.full(data.shape[0], data.shape[1], np.uint32)
    else:
        raw = np.asarray(lengths)
        if raw.ndim != 1 or raw.dtype.kind not in "iu":
            raise TypeError(f"send_batch: lengths must be a 1-D array of ints, got "
                            f"{raw.dtype} of shape {raw.shape}")
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) > 0xFFFFFFFF):
            raise ValueError(f"send_batch: lengths must be in 0..2^32-1, got "
                             f"{int(raw.min())}..{int(raw.max())}")
        lens = np.ascontiguousarray(raw, np.uint32)
        if int(lens.sum(dtype=np.uint64)) > data.nbytes:
            raise ValueError(f"send_batch: lengths add up to {int(lens.sum(dtype=np.uint64))} "
                             f"bytes, the buffer has {data.nbytes}")
    if at_ns is None or (isinstance(at_ns, int) and not isinstance(at_ns, bool)):
        return data, lens, horizon.check(at_ns), None
    each = np.asarray(at_ns)
    if each.dtype.kind not in "iu" and isinstance(at_ns, (list, tuple)):
        _check_python_ints(at_ns, horizon)
    if each.ndim != 1 or each.dtype.kind not in "iu":
        raise TypeError(f"send_batch: at_ns must be None, an int or a 1-D array of ints, got "
                        f"{each.dtype} of shape {each.shape}")
    if len(each) != len(lens):
        raise ValueError(f"send_batch: {len(each)} deadlines (at_ns) for {len(lens)} datagrams")
    return data, lens, 0, _checked_deadlines(np, each, horizon)


def _check_python_ints(items: list | tuple, horizon: Horizon) -> None:
    """Deadlines given as Python ints that numpy could not keep as int64 or uint64 (one
    beyond int64 makes the array float or object): the first of them beyond int64 is
    named, as no valid deadline is."""
    for i, v in enumerate(items):
        if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < 2**63:
            horizon.check(v, f"send_batch: at_ns[{i}]")


def _checked_deadlines(np: Any, each: Any, horizon: Horizon) -> Any:
    """A deadline per datagram as int64, the latest checked against ``horizon`` before
    the cast (a uint64 beyond int64 is named as it is); a negative one is the C loop's
    to name."""
    if each.size:
        i = int(np.argmax(each))
        horizon.check_latest(int(each[i]), f"send_batch: at_ns[{i}]")
    return np.ascontiguousarray(each, np.int64)


__all__ = ["ColumnCache", "PacketBatch", "MAX_BATCH"]
