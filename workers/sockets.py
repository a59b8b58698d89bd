"""The supervisor's side of a channel's socket: check the addresses, bind, size the buffers.

The supervisor owns every channel socket (it keeps it for the channel's life, so a
restarted worker gets the very same socket again) and hands a duplicate to the
worker over its command socket.
"""
from __future__ import annotations

import ctypes
import errno
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass, field

import psutil

from ..shmring._native import lib
from ..shmring.errors import AddressInUseError
from .kernel_features import coalesce_receives

log = logging.getLogger("rtudp.workers")

SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: what the kernel charges a datagram beyond its payload (skb + headers), roughly
_PER_PACKET_OVERHEAD = 1024

Address = tuple[int, str, int, int]  # family, host, port, scope_id


@dataclass
class BoundSocket:
    """A bound (and, with a remote, connected) UDP socket and what it is bound to,
    with the send-only socket the worker sends on when the channel also receives
    (``tx``; see :func:`_send_socket`)."""

    sock: socket.socket
    local: Address
    remote: Address | None
    multicast: bool
    tx: socket.socket | None = None
    #: buffers the sysctls capped below what the capacity needs: (sysctl, got, want)
    short: list[tuple[str, int, int]] = field(default_factory=list)

    def fds(self) -> list[int]:
        """What the worker is given: the channel socket, then the send-only one."""
        return [self.sock.fileno()] + ([self.tx.fileno()] if self.tx is not None else [])

    def close(self) -> None:
        """Close both sockets."""
        if self.tx is not None:
            self.tx.close()
        self.sock.close()


def _check_port(port: object, what: str, allow_zero: bool) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{what} port must be an int, not {type(port).__name__}: {port!r}")
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"{what} port {port!r} is out of range {low}..65535")
    return port


def check_address(addr: object, what: str, allow_zero_port: bool) -> tuple[str, int]:
    """``addr`` if it is a (host, port) tuple: host a str, port an int in range (0 only
    if ``allow_zero_port``); else TypeError/ValueError naming ``what`` and the value."""
    if not isinstance(addr, tuple) or len(addr) != 2:
        raise TypeError(f"{what} address must be a (host, port) tuple, got {addr!r}")
    host, port = addr
    if not isinstance(host, str):
        raise TypeError(f"{what} host must be a str, not {type(host).__name__}: {host!r}")
    return host, _check_port(port, what, allow_zero_port)


def _resolve(addr: object, what: str, allow_zero_port: bool) -> list[Address]:
    """Every (family, host, port, scope) ``addr`` = (host, port) can mean, IPv4 first."""
    host, port = check_address(addr, what, allow_zero_port)
    try:
        infos = socket.getaddrinfo(host or None, port, 0, socket.SOCK_DGRAM, 0,
                                   socket.AI_NUMERICSERV | (0 if host else socket.AI_PASSIVE))
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"{what} host {host!r} is not a valid address or known name: "
                         f"{exc}") from None
    out: list[Address] = []
    for fam, _t, _p, _c, sa in infos:
        if fam == socket.AF_INET:
            item: Address = (fam, sa[0], port, 0)
        elif fam == socket.AF_INET6:
            item = (fam, sa[0].split("%", 1)[0], port, sa[3])
        else:
            continue
        if item not in out:
            out.append(item)
    if not out:
        raise ValueError(f"{what} host {host!r} has no IPv4 or IPv6 address")
    out.sort(key=lambda a: a[0] != socket.AF_INET)
    return out


def _pick(local: list[Address], remote: list[Address] | None,
          laddr: object, raddr: object) -> tuple[Address, Address | None]:
    if remote is None:
        return local[0], None
    for la in local:
        for ra in remote:
            if la[0] == ra[0]:
                return la, ra
    raise ValueError(f"local address {laddr!r} and remote address {raddr!r} are not of the "
                     f"same family (IPv4 vs IPv6)")


def _is_multicast(host: str) -> bool:
    return ipaddress.ip_address(host).is_multicast


def _join(sock: socket.socket, fam: int, group: str, scope: int) -> None:
    if fam == socket.AF_INET:
        mreq = socket.inet_pton(fam, group) + struct.pack("=I", socket.INADDR_ANY)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    else:
        mreq = socket.inet_pton(fam, group) + struct.pack("=I", scope)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)


def _buffer_bytes(packets: int, max_datagram: int) -> int:
    """A socket buffer for ``packets`` datagrams of ``max_datagram`` bytes: at most what
    the kernel takes (INT_MAX / 2: it doubles what it is given)."""
    return min(packets * (max_datagram + _PER_PACKET_OVERHEAD), 0x7FFFFFFF // 2)


def _size_buffer(sock: socket.socket, force: int, plain: int, want: int, sysctl: str,
                 short: list[tuple[str, int, int]]) -> None:
    """Give ``sock`` a ``want``-byte buffer (forced past the sysctl with CAP_NET_ADMIN);
    one the sysctl caps lower is added to ``short`` as (sysctl, got, want)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, want)
        return
    except PermissionError:
        pass
    sock.setsockopt(socket.SOL_SOCKET, plain, want)
    got = sock.getsockopt(socket.SOL_SOCKET, plain) // 2  # the kernel reports double
    if got < want:
        short.append((sysctl, got, want))


def short_buffers_message(pool: str, channel: str, short: list[tuple[str, int, int]]) -> str:
    """The warning for buffers the sysctls capped (``BoundSocket.short``)."""
    got = min(g for _, g, _ in short)
    want = max(w for _, _, w in short)
    names = sorted({f"net.core.{s}" for s, _, _ in short})
    sets = " ".join(f"{n}={want}" for n in names)
    return (f"rtudp pool {pool!r}: socket buffers are capped at {got} bytes ({', '.join(names)}) "
            f"but channel {channel!r} may hold {want} bytes in flight: a burst that large can "
            f"be dropped by the kernel (counted in rx_kernel_drops); `sysctl -w {sets}` as "
            f"root (or CAP_NET_ADMIN) lifts the cap.  Said once per pool")


def _multicast_send_options(sock: socket.socket, fam: int, local_host: str, scope: int,
                            ttl: int, loop: bool) -> None:
    """Hops and loopback of what is sent to a group; the interface of a specific
    local address (else the kernel's route to the group decides)."""
    if fam == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loop))
        addr = ipaddress.ip_address(local_host)
        if not addr.is_unspecified and not addr.is_multicast:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, addr.packed)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(loop))
        if scope:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)


#: a classic BPF socket filter of one instruction, ``ret #0``: accept nothing
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_DROP_ALL = struct.pack("=HBBI", 0x06, 0, 0, 0)  # BPF_RET | BPF_K, k = 0


def _drop_everything(sock: socket.socket) -> None:
    insns = ctypes.create_string_buffer(_DROP_ALL, len(_DROP_ALL))
    prog = struct.pack("@HP", 1, ctypes.addressof(insns))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, prog)


def _send_socket(main: socket.socket, fam: int, bound_to: tuple, rfam: int, rhost: str,
                 scope: int, multicast_ttl: int, multicast_loop: bool) -> socket.socket:
    """A second socket on the channel's local address that only sends.

    Why: the worker asks the kernel for a TX timestamp of every packet it sends, and
    each stamp queued on a socket's error queue wakes whoever waits on that socket,
    EPOLLERR included, which epoll cannot mask.  On the channel socket that waiter is
    the worker's RX thread: two context switches a packet, which on a VM cost more
    than the send (a worker at 50 kpps each way fell behind by hundreds of ms).  Sent
    from here, stamps wake nobody.

    It shares the port through SO_REUSEADDR, set on the channel socket only while this
    one binds (so nothing else can join the port afterwards).  It is not connected: a
    datagram from the channel's remote matches the connected channel socket better
    and goes there; anything else it would get is dropped by a filter, as the
    connected channel socket would not have taken it either.
    """
    tx = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        _drop_everything(tx)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        main.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tx.bind(bound_to)
        finally:
            main.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        if _is_multicast(rhost):
            _multicast_send_options(tx, rfam, bound_to[0], scope, multicast_ttl,
                                    multicast_loop)
        tx.setblocking(False)
        return tx
    except BaseException:
        tx.close()
        raise


def _holders(host: str, port: int) -> str:
    """Who holds UDP port `port` where `host` would bind it, for an address-in-use error:
    e.g. " (bound by pid 1234, python3)"; "" when no process can be named.  A process
    that keeps a handle on a closed rtudp channel that sent directly keeps its port
    until it next sends or closes the handle: this names it."""
    try:
        conns = psutil.net_connections(kind="udp")
    except (psutil.Error, OSError):
        return ""
    unspecified = ("0.0.0.0", "::")
    pids = sorted({c.pid for c in conns if c.laddr and c.laddr.port == port
                   and (c.laddr.ip == host or c.laddr.ip in unspecified or host in unspecified)
                   and c.pid is not None})
    names = []
    for pid in pids[:3]:
        try:
            names.append(f"pid {pid}, {psutil.Process(pid).name()}")
        except psutil.Error:
            names.append(f"pid {pid}")
    if not names:
        return ""
    more = f" and {len(pids) - 3} more" if len(pids) > 3 else ""
    return f" (bound by {'; '.join(names)}{more})"


#: tries at an even port whose odd neighbour is free (:func:`_even_port`)
PAIR_TRIES = 64


def _even_port(fam: int, host: str, scope: int) -> int:
    """An even port of ``host`` that is free with the odd one above it (both bound
    for a moment, then let go for the channel: RTP and its RTCP, RFC 3550 11)."""
    def at(port: int) -> tuple:
        return (host, port) if fam == socket.AF_INET else (host, port, 0, scope)
    for _ in range(PAIR_TRIES):
        with socket.socket(fam, socket.SOCK_DGRAM) as low:
            low.bind(at(0))
            port = int(low.getsockname()[1])
            if port % 2 or port >= 65535:
                continue
            with socket.socket(fam, socket.SOCK_DGRAM) as high:
                try:
                    high.bind(at(port + 1))
                except OSError:
                    continue
            return port
    raise AddressInUseError(errno.EADDRINUSE, f"no even port with a free neighbour on "
                            f"{host!r} in {PAIR_TRIES} tries")


def bind_socket(channel: str, local: object, remote: object, direction: int, capacity: int,
                max_datagram: int, multicast_ttl: int = 1,
                multicast_loop: bool = True, rx_capacity: int | None = None,
                port_pair: bool = False) -> BoundSocket:
    """Check the addresses, bind a UDP socket to ``local``, connect it to ``remote``;
    a channel that sends to a fixed unicast remote and also receives gets a second,
    send-only socket on the same address (:func:`_send_socket`).

    Its buffers hold ``capacity`` datagrams of ``max_datagram`` bytes (the receive
    buffer ``rx_capacity``, when given).  A multicast ``local`` is a group to join; a
    multicast ``remote`` gets the TTL (hop limit) ``multicast_ttl`` and loopback
    ``multicast_loop``.

    ``port_pair``: the channel also uses the port above (rtp's RTCP): a port left to
    the pool (0) is an even one with the odd one above it free.

    Bad addresses raise ValueError/TypeError naming them; an address in use raises
    :class:`AddressInUseError` (an OSError) naming it.
    """
    lcands = _resolve(local, "local", True)
    rcands = None if remote is None else _resolve(remote, "remote", False)
    la, ra = _pick(lcands, rcands, local, remote)
    fam, host, port, scope = la
    multicast = _is_multicast(host)
    if port_pair and port == 0 and not multicast:
        port = _even_port(fam, host, scope)
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if multicast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bind_to = (host, port) if fam == socket.AF_INET else (host, port, 0, scope)
        try:
            sock.bind(bind_to)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUseError(
                    errno.EADDRINUSE, f"local address {local!r} of channel {channel!r} is "
                    f"already in use{_holders(host, port)}") from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL, errno.EAFNOSUPPORT):
                raise ValueError(f"local address {local!r} of channel {channel!r} cannot be "
                                 f"bound on this machine: {exc.strerror}") from None
            if exc.errno == errno.EACCES:
                raise PermissionError(exc.errno, f"binding local address {local!r} of "
                                      f"channel {channel!r}: {exc.strerror}") from None
            raise
        if multicast:
            _join(sock, fam, host, scope)
        if ra is not None:
            rfam, rhost, rport, rscope = ra
            if _is_multicast(rhost):
                _multicast_send_options(sock, rfam, host, scope or rscope, multicast_ttl,
                                        multicast_loop)
            target = (rhost, rport) if rfam == socket.AF_INET else (rhost, rport, 0, rscope)
            try:
                sock.connect(target)
            except OSError as exc:
                raise ValueError(f"remote address {remote!r} of channel {channel!r} cannot be "
                                 f"reached: {exc.strerror}") from None
        want = _buffer_bytes(capacity, max_datagram)
        short: list[tuple[str, int, int]] = []
        if direction in (lib.RTUDP_DIR_RECV, lib.RTUDP_DIR_BOTH):
            rx_want = want if rx_capacity is None else _buffer_bytes(rx_capacity, max_datagram)
            _size_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, rx_want, "rmem_max", short)
            # before the name is published: a reader that attaches before the worker has
            # the channel sizes its direct receives for what the socket coalesces
            coalesce_receives(sock)
        if direction in (lib.RTUDP_DIR_SEND, lib.RTUDP_DIR_BOTH):
            _size_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, want, "wmem_max", short)
        sock.setblocking(False)
        bound = sock.getsockname()
        actual: Address = (fam, host, int(bound[1]), scope)
        tx = None
        if ra is not None and direction == lib.RTUDP_DIR_BOTH and not multicast:
            tx = _send_socket(sock, fam, bound, ra[0], ra[1], scope or ra[3], multicast_ttl,
                              multicast_loop)
            _size_buffer(tx, SO_SNDBUFFORCE, socket.SO_SNDBUF, want, "wmem_max", short)
        return BoundSocket(sock, actual, ra, multicast, tx, short)
    except BaseException:
        sock.close()
        raise


__all__ = ["Address", "BoundSocket", "bind_socket", "check_address", "short_buffers_message"]
