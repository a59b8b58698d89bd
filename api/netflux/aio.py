"""asyncio for netflux channels: ``await wait_update()`` for the next image.

:class:`AsyncNetfluxChannel` is the wrapper the netflux kind's registry entry names
(``rtudp.shmring.kinds``), so ``rtudp.aio.wrap`` and ``rtudp.aio.open_channel`` give it
for a :class:`NetfluxChannel`; ``rtudp.aio.AsyncNetfluxChannel`` is this class too.  It
waits as :mod:`rtudp.aio`'s channels do: on the eventfd the worker writes when an image
came or the watchdog moved.
"""
from __future__ import annotations

from rtudp.aio import RX, _AsyncHandle, _deadline

from .channel import Image, NetfluxChannel


class AsyncNetfluxChannel(_AsyncHandle):
    """A netflux channel for asyncio: ``await wait_update()`` for the next image."""

    def __init__(self, channel: NetfluxChannel) -> None:
        if not isinstance(channel, NetfluxChannel):
            raise TypeError(f"AsyncNetfluxChannel wraps a NetfluxChannel, not "
                            f"{type(channel).__name__}")
        super().__init__(channel, channel._seg.config()["worker"])

    async def wait_update(self, timeout: float | None = None, after: int | None = None) -> Image:
        """The next received image after update number ``after`` (None: the current
        one); TimeoutError if none comes within ``timeout`` s."""
        nf = self.channel
        last = nf.read().updates if after is None else after

        def check() -> Image | None:
            img = nf.read()
            return img if img.updates != last else None

        img = check() or await self._waiter.wait(RX, check, _deadline(timeout))
        if img is None:
            raise TimeoutError(f"no new image on netflux channel {nf.name!r} within "
                               f"{timeout} s")
        return img

    async def wait_event(self, seen: int, timeout: float | None = None) -> int:
        """Wait until ``events`` differs from ``seen`` (an image or a watchdog
        transition) or ``timeout`` s pass; returns ``events`` as it then is."""
        nf = self.channel
        now = await self._waiter.wait(RX, lambda: e if (e := nf.events) != seen else None,
                                      _deadline(timeout))
        return nf.events if now is None else now


__all__ = ["AsyncNetfluxChannel"]
