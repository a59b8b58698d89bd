"""asyncio for channels: ``await ch.recv()``, ``async for pkt in ch``, ``await ch.send()``.

``AsyncChannel(channel)`` wraps a channel handle, ``await rtudp.aio.open_channel(...)``
opens one (as :func:`rtudp.open_channel`) and wraps it.  :func:`wrap` gives a handle
the wrapper its kind's registry entry names (``aio=`` in :mod:`rtudp.shmring.kinds`),
or :class:`AsyncChannel` (recv, recv_many, recv_batch, async iteration, send,
send_many, send_batch) for a kind whose handle is an :class:`rtudp.Channel` and whose
entry names none.  A kind's asyncio module is ``rtudp.aio.<kind>`` and the wrapper it
names ``rtudp.aio.<its class name>``, both imported when first used, so this module
imports no kind's.  Every other attribute of a wrapper is the wrapped handle's.

How the event loop learns that something came, without a thread or polling: each
wrapper registers an eventfd of this process in the channel's shared memory (a slot of
``struct rtudp_async_wait``, csrc/async_wait.h); the channel's worker takes a duplicate
of it (``pidfd_getfd``: it needs ptrace access to this process, which a process of
the same user has unless Yama's ptrace_scope or a security module forbids it) and
answers once.  The loop watches the eventfd like any socket (``add_reader``: asyncio
and uvloop alike).  Before it waits, a wrapper sets its bit in the channel's armed
word and looks at the ring once more; the worker, after publishing, takes the armed
bits and writes their eventfds.  So the worker writes only while a loop waits, and no
wake-up is lost in between.  The registration is in shared memory: a restarted
worker takes the duplicates again when it first needs them.  Waiting for room in the
TX ring works the same way, with the worker's release of ring space as the event.

Cancelling a waiting call leaves nothing behind but, at most, one spurious wake-up.
A wrapper belongs to the event loop of its first wait (until that loop is closed).  A channel has 16 slots: at
most 16 live wrappers at a time, over all processes.
"""
from __future__ import annotations

import asyncio
import errno
import functools
import os
from time import monotonic
from typing import Any, AsyncIterator, Callable, Sequence, TypeVar

from rtudp.shmring._native import ffi, lib
from rtudp.shmring.errors import BackPressureError, RtUdpError
from rtudp.shmring.kinds import Kind, find, kinds

from .batch import PacketBatch
from .channel import Channel, Packet, _check_timeout

#: how long a wrapper waits, at its first wait, for the worker to take its eventfd
ANSWER_TIMEOUT_S = 5.0
#: how often it looks at the answer meanwhile (the answer also wakes it)
ANSWER_STEP_S = 0.05
#: a wait without end looks again this often whether the channel can still carry
#: traffic (as Channel.recv's wait does: csrc/pyfast/liveness.c)
WATCH_SLICE_S = 0.2

RX = lib.RTUDP_ASYNC_RX
TX = lib.RTUDP_ASYNC_TX
T = TypeVar("T")


def _deadline(timeout: float | None) -> float | None:
    """monotonic() time `timeout` s from now (None: no limit), the timeout checked."""
    _check_timeout(timeout)
    return None if timeout is None else monotonic() + timeout


class _Waiter:
    """One wrapper's registration: an eventfd in a slot of the channel's async waiters,
    watched by the event loop of the first wait."""

    def __init__(self, name: str, seg: Any, control: Any, worker: int) -> None:
        self._name = name
        self._block = seg.block
        self._seg = seg
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._pid = os.getpid()
        self._slot = int(lib.rtudp_async_register(self._block, control.worker(worker),
                                                  self._pid, self._efd))
        if self._slot < 0:
            os.close(self._efd)
            raise RtUdpError(f"channel {name!r}: all {lib.RTUDP_ASYNC_SLOTS} async waiter "
                             f"slots are held by live processes (one per AsyncChannel)")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._futures: set[asyncio.Future] = set()
        self._waiting = [0, 0]          # calls waiting, per direction
        self._answered = False
        self.closed = False

    # ---- the event loop's side

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop and self._loop.is_closed():
            self._loop = None  # its loop ended (asyncio.run returned): the next one takes it
            self._futures = set()
        if self._loop is None:
            loop.add_reader(self._efd, self._on_ready)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(f"AsyncChannel {self._name!r} belongs to another event loop "
                               f"(the one of its first wait)")
        return loop

    def _on_ready(self) -> None:
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass
        futures, self._futures = self._futures, set()
        for f in futures:
            if not f.done():
                f.set_result(True)

    async def _poked(self, loop: asyncio.AbstractEventLoop, until: float | None) -> bool:
        """Wait for the eventfd until monotonic() time `until` (None: no limit): True when
        it was written, False when the time passed."""
        fut = loop.create_future()
        self._futures.add(fut)
        timer = None
        if until is not None:
            timer = loop.call_later(max(0.0, until - monotonic()),
                                    lambda: fut.done() or fut.set_result(False))
        try:
            return await fut
        finally:
            self._futures.discard(fut)
            if timer is not None:
                timer.cancel()

    async def _answer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the worker has taken our eventfd (the first wait only)."""
        give_up = monotonic() + ANSWER_TIMEOUT_S
        err = ffi.new("int32_t *")
        while True:
            status = lib.rtudp_async_status(self._block, self._slot, err)
            if status == lib.RTUDP_ASYNC_OK:
                self._answered = True
                return
            if status == lib.RTUDP_ASYNC_FAILED:
                raise RtUdpError(
                    f"channel {self._name!r}: its worker could not take this process's "
                    f"eventfd (pidfd_getfd: {os.strerror(err[0]) if err[0] else 'refused'}, "
                    f"errno {errno.errorcode.get(err[0], err[0])}); it needs ptrace access to "
                    f"this process (same user; Yama's kernel.yama.ptrace_scope 0)")
            if monotonic() >= give_up:
                raise RtUdpError(f"channel {self._name!r}: no worker answered this event "
                                 f"loop's registration within {ANSWER_TIMEOUT_S:g} s (is "
                                 f"the channel served, the pool running?)")
            await self._poked(loop, min(give_up, monotonic() + ANSWER_STEP_S))

    async def wait(self, direction: int, check: Callable[[], T | None],
                   until: float | None) -> T | None:
        """check()'s first result that is not None, waiting on the eventfd in between;
        None once monotonic() passes `until` (None: no limit)."""
        self._check_mapped()
        loop = self._bind()
        if not self._answered:
            await self._answer(loop)
        self._waiting[direction] += 1
        armed = False  # our bit may be set: the worker has not taken it
        arm, block, slot = lib.rtudp_async_arm, self._block, self._slot
        try:
            while True:
                arm(block, slot, direction)
                armed = True
                got = check()  # after arming: what came before is seen here, later wakes us
                if got is not None:
                    return got
                # a closed channel or a dead pool pokes nobody: check() (which raises
                # then) runs again every WATCH_SLICE_S of a long wait
                look = monotonic() + WATCH_SLICE_S
                if not await self._poked(loop, look if until is None or until > look
                                         else until):
                    if until is not None and monotonic() >= until:
                        return check()
                    continue
                self._check_mapped()  # another task may have closed the channel meanwhile
                armed = False  # woken: the worker took the bit (or another wait's was)
                got = check()
                if got is not None:
                    return got
        finally:
            self._waiting[direction] -= 1
            # a bit left set costs one needless wake-up later: clear it, unless another
            # call of this wrapper still waits on it
            if armed and not self._waiting[direction] and self._mapped:
                lib.rtudp_async_disarm(self._block, self._slot, direction)

    @property
    def _mapped(self) -> bool:
        """The slot is ours and the channel block still mapped (else no lib call)."""
        return not self.closed and not self._seg.closed

    def _check_mapped(self) -> None:
        if not self._mapped:
            raise ValueError(f"AsyncChannel {self._name!r} is closed" if self.closed else
                             f"channel {self._name!r} is closed")

    def __del__(self) -> None:
        # a wrapper dropped without close(): its slot is not held until the process ends
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the loop or the mapping may be gone already
            pass

    def close(self) -> None:
        """Give the slot back, stop watching the eventfd, close it (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._efd)
        for f in self._futures:
            if not f.done():
                f.set_result(True)  # the waiting calls see `closed` and raise
        self._futures = set()
        if not self._seg.closed:
            lib.rtudp_async_release(self._block, self._slot, self._pid)
        os.close(self._efd)


class _AsyncHandle:
    """What every channel handle's wrapper shares: the registration, closing, the
    wrapped handle's other attributes."""

    def __init__(self, handle: Any, worker: int) -> None:
        if handle.closed:
            raise ValueError(f"channel {handle.name!r} is closed")
        self.channel = handle
        self._waiter = _Waiter(handle.name, handle._seg, handle._control, worker)

    def __getattr__(self, name: str) -> Any:
        if name in ("channel", "_waiter"):  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.channel, name)

    @property
    def closed(self) -> bool:
        """True once closed (this wrapper or the channel)."""
        return self._waiter.closed or self.channel.closed

    def close(self) -> None:
        """Close this wrapper and the channel it wraps (idempotent)."""
        self._waiter.close()
        self.channel.close()

    def detach(self) -> Any:
        """Close this wrapper only (its slot is given back); returns the channel, open."""
        self._waiter.close()
        return self.channel

    async def __aenter__(self: Any) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncChannel(_AsyncHandle):
    """An :class:`rtudp.Channel` (of any kind whose handle is one) for asyncio: every
    wait is an await, never a block.

    ``recv`` and ``__anext__`` give what the channel's ``recv`` gives (:class:`Packet`,
    or the kind's own record).  ``send`` waits for room in the TX ring instead of
    raising BackPressureError (``timeout`` s at most: then it raises it)."""

    def __init__(self, channel: Channel) -> None:
        if not isinstance(channel, Channel):
            raise TypeError(f"AsyncChannel wraps an rtudp.Channel, not "
                            f"{type(channel).__name__}{_wrap_hint(channel)}")
        super().__init__(channel, channel.worker)
        self._try_recv = channel._try_recv  # (the kind's own, e.g. a frame's)

    # ---- receiving

    async def recv(self, timeout: float | None = None) -> Packet:
        """The next datagram, waiting up to ``timeout`` s (None = forever); TimeoutError
        if none came."""
        try:
            pkt = self._try_recv()  # what is there already: no check costs more than this
        except ValueError:
            pkt = None  # a closed ring: the checks below say so
        if pkt is not None and (timeout is None or type(timeout) in (int, float)):
            return pkt
        ch = self.channel
        ch._check_recv(timeout)  # the timeout too
        if pkt is None:
            until = None if timeout is None else monotonic() + timeout
            pkt = await self._waiter.wait(RX, self._try_recv, until)
            if pkt is None:
                raise TimeoutError(f"no datagram on channel {ch.name!r} within {timeout} s")
        return pkt

    async def recv_many(self, max_n: int = 64, timeout: float | None = None) -> list[Packet]:
        """Up to ``max_n`` datagrams once the first came; [] after ``timeout`` s."""
        ch = self.channel
        got = ch.recv_many(max_n, 0)
        if got:
            return got
        return await self._waiter.wait(RX, lambda: ch.recv_many(max_n, 0) or None,
                                       _deadline(timeout)) or []

    async def recv_batch(self, max_n: int = 1024, timeout: float | None = None) -> PacketBatch:
        """Up to ``max_n`` datagrams as numpy columns (:meth:`Channel.recv_batch`) once
        the first came; an empty batch after ``timeout`` s."""
        ch = self.channel
        got = ch.recv_batch(max_n, 0)
        if len(got):
            return got
        more = await self._waiter.wait(RX, lambda: (b if len(b := ch.recv_batch(max_n, 0))
                                                    else None), _deadline(timeout))
        return more if more is not None else got

    def __aiter__(self) -> AsyncIterator[Packet]:
        return self

    async def __anext__(self) -> Packet:
        if self.closed:
            raise StopAsyncIteration
        try:
            return await self.recv()
        except ValueError:
            if self.closed:  # closed while it waited
                raise StopAsyncIteration from None
            raise

    # ---- sending

    async def _until_room(self, attempt: Callable[[], T | None], timeout: float | None,
                          what: str) -> T:
        until = _deadline(timeout)
        got = await self._waiter.wait(TX, attempt, until)
        if got is None:
            raise BackPressureError(f"channel {self.channel.name!r}: TX ring still full after "
                                    f"{timeout} s: {what} not queued")
        return got

    async def send(self, data: bytes, at_ns: int | None = None,
                   timeout: float | None = None) -> None:
        """Queue one datagram (as :meth:`Channel.send`), waiting for room in the TX ring
        while it is full: up to ``timeout`` s (None = as long as it takes)."""
        ch = self.channel
        try:
            ch.send(data, at_ns)
            return
        except BackPressureError:
            pass

        def attempt() -> bool | None:
            try:
                ch.send(data, at_ns)
                return True
            except BackPressureError:
                return None

        await self._until_room(attempt, timeout, f"a {len(data)}-byte datagram")

    async def send_many(self, items: Sequence[bytes], at_ns: int | None = None,
                        timeout: float | None = None) -> int:
        """Queue every datagram of ``items`` (as :meth:`Channel.send_many`), waiting for
        room whenever the ring is full; returns how many (all)."""
        items = list(items)
        sent = 0

        def attempt() -> int | None:
            nonlocal sent
            try:
                sent += self.channel.send_many(items[sent:], at_ns)
                return sent
            except BackPressureError as exc:
                sent += exc.sent
                return None

        if attempt() is None:
            await self._until_room(attempt, timeout, f"{len(items) - sent} of {len(items)} "
                                                     f"datagrams")
        return sent

    async def send_batch(self, buffer: Any, lengths: Any = None, at_ns: Any = None,
                         timeout: float | None = None) -> int:
        """Queue a batch (as :meth:`Channel.send_batch`), waiting for room whenever the
        ring is full; returns how many (all)."""
        from .batch import batch_arrays

        data, lens, at, each = batch_arrays(buffer, lengths, at_ns, self.channel.horizon)
        flat = data.reshape(-1)
        sent = off = 0

        def attempt() -> int | None:
            nonlocal sent, off
            try:
                n = self.channel.send_batch(flat[off:], lens[sent:],
                                            at if each is None else each[sent:])
            except BackPressureError as exc:
                n = exc.sent
            off += int(lens[sent:sent + n].sum())
            sent += n
            return sent if sent == len(lens) else None

        if attempt() is None:
            await self._until_room(attempt, timeout, f"{len(lens) - sent} of {len(lens)} "
                                                     f"datagrams")
        return sent


#: wrappers :func:`register` added, by the type they wrap (the latest first); checked
#: before a kind's registry entry
_WRAPPERS: list[tuple[type, type]] = []


def register(handle_type: type, wrapper: type) -> None:
    """Wrap objects of ``handle_type`` in ``wrapper`` (a class taking the object) in
    :func:`wrap` and :func:`open_channel`; checked before the kinds' entries.  A kind
    names its handle's wrapper in its registry entry instead (``aio=``); a kind's
    asyncio module registers the other objects it wraps (sockets, say) here."""
    _WRAPPERS.insert(0, (handle_type, wrapper))


def _registered(handle: Any) -> type | None:
    """The wrapper :func:`register` gave ``handle``'s type, None if none."""
    for handle_type, wrapper in _WRAPPERS:
        if isinstance(handle, handle_type):
            return wrapper
    return None


def _kind_of(handle: Any) -> Kind | None:
    """The registered kind ``handle`` is a channel handle of (its class's ``KIND``)."""
    code = getattr(type(handle), "KIND", None)
    return find(code) if isinstance(code, int) else None


def _kind_wrapper(kind: Kind, handle: Any) -> type:
    """The wrapper kind ``kind``'s entry names, else the generic one for a Channel."""
    wrapper = kind.aio_class()
    if wrapper is not None:
        return wrapper
    if isinstance(handle, Channel):
        return AsyncChannel
    side = f" (its asyncio side: rtudp.aio.{kind.name})" if kind.aio is not None else ""
    raise TypeError(f"no async wrapper for {kind.name} channel handles "
                    f"({type(handle).__name__}): the kind's registry entry names no wrapper "
                    f"class (aio=){side} and the handle is no rtudp.Channel")


def _wrap_hint(handle: Any) -> str:
    """What to use instead of AsyncChannel for ``handle``, from its kind's entry."""
    kind = _kind_of(handle)
    if kind is None or kind.aio_class() is None:
        return ""
    return f" (a {kind.name} channel handle: rtudp.aio.wrap gives it {_class_name(kind)})"


def wrapper_for(handle: Any) -> type:
    """The class :func:`wrap` wraps ``handle`` in: the one :func:`register` gave its
    type; else, for a channel handle, the one its kind's registry entry names
    (:class:`AsyncChannel` for an :class:`rtudp.Channel` whose entry names none); else
    one a kind's asyncio module registers when imported.  TypeError if none."""
    wrapper = _registered(handle)
    if wrapper is not None:
        return wrapper
    kind = _kind_of(handle)
    if kind is not None:
        return _kind_wrapper(kind, handle)
    for each in kinds():
        each.aio_module()  # registers the objects of its kind it wraps (if not yet)
    wrapper = _registered(handle)
    if wrapper is None:
        raise TypeError(f"no async wrapper for {type(handle).__name__} objects: not a "
                        f"channel handle of a registered kind, nor a type a kind's "
                        f"asyncio module or rtudp.aio.register gave one")
    return wrapper


def wrap(handle: Any) -> Any:
    """The async wrapper for a channel handle of any kind (:func:`wrapper_for`)."""
    return wrapper_for(handle)(handle)


async def open_channel(name: Any, pool: Any = None, **kwargs: Any) -> Any:
    """Open a channel as :func:`rtudp.open_channel` does (``pool`` may also be a
    :class:`rtudp.Pool` or :class:`rtudp.PoolClient`), in a thread so the event loop
    never blocks, and wrap it (:func:`wrap`)."""
    from .embedded import cleanup_on_sigterm
    from .embedded import open_channel as open_sync

    if pool is not None and hasattr(pool, "open_channel"):
        opener = functools.partial(pool.open_channel, name, **kwargs)
    else:
        opener = functools.partial(open_sync, name, pool, **kwargs)
    handle = await asyncio.get_running_loop().run_in_executor(None, opener)
    # an embedded pool started in that thread could not catch SIGTERM: from here it can
    cleanup_on_sigterm()
    try:
        return wrap(handle)
    except BaseException:
        handle.close()
        raise


def _class_name(kind: Kind) -> str:
    """The name of the wrapper class kind ``kind``'s entry names ("" if none)."""
    aio = kind.aio
    if isinstance(aio, type):
        return aio.__name__
    return "" if aio is None else aio.partition(":")[2]


def __getattr__(name: str) -> Any:
    """A kind's asyncio side, imported when first asked for: ``rtudp.aio.<kind>`` is
    the module its registry entry names, ``rtudp.aio.<class>`` the wrapper class."""
    for kind in kinds():
        if kind.aio is not None and name == kind.name:
            return kind.aio_module()
        if name and name == _class_name(kind):
            return kind.aio_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the kinds' asyncio sides this module gives (:func:`__getattr__`), as registered now
_KIND_EXPORTS = [n for k in kinds() if k.aio is not None
                 for n in (k.name, _class_name(k)) if n]

__all__ = ["AsyncChannel", "open_channel", "register", "wrap", "wrapper_for", *_KIND_EXPORTS]
