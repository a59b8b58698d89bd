"""Shared-memory segments: ``/dev/shm/rtudp.<name>``, created, opened, validated, unlinked.

posix_ipc creates and opens the objects; the mapping and every check of what is in
them happens in C (``rtudp_ring_segment_validate``), so a corrupt or hostile segment
gives an exception, never a crash.
"""
from __future__ import annotations

import errno
import os
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import posix_ipc

from ._native import ffi, lib
from .errors import BadSegmentError, SegmentNotFoundError

PREFIX = "rtudp."
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,%d}" % lib.RTUDP_NAME_MAX)
DEFAULT_MODE = 0o600


def validate_name(name: object, what: str = "segment name") -> str:
    """Return ``name`` if it is a valid segment name, else raise ValueError/TypeError
    (``what`` names it in the message: "channel name", "pool name", ...)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}: {name!r}")
    if not _NAME.fullmatch(name):
        why = "is empty" if not name else "has other characters" if \
            len(name) <= lib.RTUDP_NAME_MAX else f"is longer than {lib.RTUDP_NAME_MAX}"
        raise ValueError(f"invalid {what} {name!r}: it {why}; it must be 1 to "
                         f"{lib.RTUDP_NAME_MAX} of A-Z a-z 0-9 _ . -")
    return name


def shm_name(name: str) -> str:
    """The POSIX shared-memory name of segment ``name`` (``/rtudp.<name>``)."""
    return "/" + PREFIX + validate_name(name)


def shm_path(name: str) -> str:
    """Where the segment shows in the file system."""
    return "/dev/shm/" + PREFIX + validate_name(name)


def check_message(check: Any) -> str:
    """The C validator's message out of a ``struct rtudp_check``."""
    return ffi.string(check.msg).decode("utf-8", "replace")


def c_checked(fn: Callable[..., int], *args: Any, error: type[Exception] = ValueError) -> None:
    """Call the C ``fn(*args, struct rtudp_check *)``; ``error`` with its message unless
    it returns RTUDP_OK."""
    check = ffi.new("struct rtudp_check *")
    if fn(*args, check) != lib.RTUDP_OK:
        raise error(check_message(check))


def _reserve(fd: int, name: str, offset: int, length: int) -> None:
    """Allocate ``length`` bytes of the segment's pages from ``offset`` now: a tmpfs
    file is sparse, and a page that cannot be had when it is first touched kills the
    process touching it (SIGBUS), a worker included.  Too big for /dev/shm:
    MemoryError naming the sizes."""
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.ENOMEM):
            raise
        st = os.statvfs("/dev/shm")
        raise MemoryError(f"segment {shm_path(name)} needs {length} bytes more "
                          f"({length / 2**20:.1f} MiB), /dev/shm has "
                          f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free: lower the "
                          f"capacity or max_datagram") from None


def reserve(name: str, offset: int, length: int) -> None:
    """Allocate part of segment ``name`` that :meth:`Segment.create` left sparse
    (``reserved=``) before anything touches it: MemoryError when /dev/shm has no room,
    SegmentNotFoundError when there is no such segment."""
    try:
        fd = os.open(shm_path(name), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SegmentNotFoundError(f"no segment {shm_path(name)}") from None
    try:
        _reserve(fd, name, offset, length)
    finally:
        os.close(fd)


def access_denied(name: str, exc: BaseException) -> str:
    """Why this process may not open segment ``name``: its owner, group and mode."""
    path = shm_path(name)
    try:
        st = os.stat(path)
    except OSError:
        return f"cannot open {path}: {exc}"
    import grp
    import pwd
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    shared = ("shared with group " + repr(group) if st.st_mode & 0o060
              else "private to its owner; a pool is shared with a group by "
                   "`rtudp pool start --group NAME` or Pool(group=...)")
    return (f"cannot open {path}: permission denied for uid {os.getuid()} (owner "
            f"{owner!r}, group {group!r}, mode {st.st_mode & 0o777:04o}: {shared})")


class _Mapping:
    """One mmap of a segment and how many Segment objects use it (Segment.share): the
    last of them to close unmaps it."""

    def __init__(self, base: Any, size: int) -> None:
        self.base = base
        self.size = size
        self.users = 1
        self.lock = threading.Lock()  # handles are closed from any thread

    def take(self) -> None:
        with self.lock:
            self.users += 1

    def drop(self) -> None:
        with self.lock:
            self.users -= 1
            last = self.users == 0
        if last:
            lib.rtudp_unmap(self.base, self.size)


class Segment:
    """One mapped segment. Closing unmaps it; unlinking removes the name."""

    def __init__(self, name: str, base: Any, size: int, created: bool,
                 mapping: _Mapping | None = None) -> None:
        self.name = name
        self.base = base
        self.size = size
        self.created = created
        self._mapping = _Mapping(base, size) if mapping is None else mapping

    def share(self) -> "Segment":
        """Another Segment over this one's mapping, for an object of this process with
        a lifetime of its own (a channel handle the supervisor makes): no second mmap.
        Each is closed on its own; the mapping goes when the last is closed."""
        if self.base is None:
            raise ValueError(f"segment {shm_path(self.name)} is closed")
        self._mapping.take()
        return Segment(self.name, self.base, self.size, created=False, mapping=self._mapping)

    @classmethod
    def create(cls, name: str, size: int, mode: int = DEFAULT_MODE,
               reserved: tuple[tuple[int, int], ...] | None = None) -> "Segment":
        """Create and map a new zero-filled segment; FileExistsError if the name is taken.

        Its pages are allocated now (``reserved``: only those (offset, length) ranges;
        the caller allocates the rest with :func:`reserve` before anything touches it).
        """
        posix = shm_name(name)
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"segment size must be a positive int, got {size!r}")
        try:
            shm = posix_ipc.SharedMemory(posix, flags=posix_ipc.O_CREX, mode=mode, size=size)
        except posix_ipc.ExistentialError:
            raise FileExistsError(f"segment {shm_path(name)} already exists") from None
        except posix_ipc.PermissionsError as exc:
            raise PermissionError(f"cannot create {shm_path(name)}: {exc}") from None
        try:
            os.fchmod(shm.fd, mode)  # shm_open applies the umask; the mode is what we say
            for offset, length in reserved or ((0, size),):
                _reserve(shm.fd, name, offset, length)
            base = lib.rtudp_map(shm.fd, size, 1)
            if base == ffi.NULL:
                raise OSError(ffi.errno, f"mmap of {shm_path(name)} ({size} bytes) failed: "
                              f"{os.strerror(ffi.errno)}")
        except BaseException:
            shm.close_fd()
            shm.unlink()
            raise
        shm.close_fd()
        return cls(name, base, size, created=True)

    @classmethod
    def open(cls, name: str, writable: bool = True) -> "Segment":
        """Map an existing segment (its header is validated by the ring that uses it).

        ``writable=False`` maps it read-only (monitors): a stray write faults instead
        of changing what workers see.
        """
        posix = shm_name(name)
        try:
            shm = posix_ipc.SharedMemory(posix, read_only=not writable)
        except posix_ipc.ExistentialError:
            raise SegmentNotFoundError(f"no segment {shm_path(name)}") from None
        except posix_ipc.PermissionsError as exc:
            raise PermissionError(access_denied(name, exc)) from None
        try:
            size = shm.size
            header = ffi.sizeof("struct rtudp_segment_header")
            if size < header:
                raise BadSegmentError(f"segment {shm_path(name)}: {size} bytes, smaller than "
                                      f"its {header}-byte header")
            base = lib.rtudp_map(shm.fd, size, 1 if writable else 0)
            if base == ffi.NULL:
                raise OSError(ffi.errno, f"mmap of {shm_path(name)} failed: "
                              f"{os.strerror(ffi.errno)}")
        finally:
            shm.close_fd()
        return cls(name, base, size, created=False)

    @property
    def closed(self) -> bool:
        """True once unmapped."""
        return self.base is None

    def close(self) -> None:
        """Unmap (idempotent). Pointers into the segment must not be used afterwards."""
        if self.base is not None:
            self.base = None
            self._mapping.drop()

    def unlink(self) -> None:
        """Remove the name (idempotent); mappings stay valid until closed."""
        try:
            posix_ipc.unlink_shared_memory(shm_name(self.name))
        except posix_ipc.ExistentialError:
            pass

    @contextmanager
    def removed_on_error(self) -> Iterator["Segment"]:
        """The block that makes a new segment valid: if it raises, the segment is closed
        and its name removed, so a failed create leaves nothing behind."""
        try:
            yield self
        except BaseException:
            self.close()
            self.unlink()
            raise

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.size} bytes"
        return f"<Segment {shm_path(self.name)} {state}>"


def unlink(name: str) -> bool:
    """Remove segment ``name`` if it exists; True if it did."""
    try:
        posix_ipc.unlink_shared_memory(shm_name(name))
        return True
    except posix_ipc.ExistentialError:
        return False
