"""Writing pcapng (the IETF draft "PCAP Next Generation Capture File Format") with
UDP datagrams wrapped in the IPv4/IPv6 and UDP headers they had on the wire.

One section, one interface of link type RAW (an IP packet per block, version from
its first nibble), timestamps in nanoseconds (``if_tsresol`` 9), an Enhanced Packet
Block per datagram with its direction (``epb_flags``), and an Interface Statistics
Block at the end with what was received and dropped.  Little-endian throughout
(readers take the byte order from the section header).
"""
from __future__ import annotations

import functools
import socket
import struct
import sys
from array import array
from typing import BinaryIO

LINKTYPE_RAW = 101
SHB, IDB, EPB, ISB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x00000005
BYTE_ORDER_MAGIC = 0x1A2B3C4D
# option codes
OPT_END, OPT_COMMENT = 0, 1
SHB_OS, SHB_USERAPPL = 3, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
EPB_FLAGS = 2
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP, ISB_USRDELIV = 2, 3, 4, 5, 8
#: epb_flags bits 0-1: the direction
INBOUND, OUTBOUND = 1, 2
IP_TTL = 64


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _options(opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    out = b"".join(struct.pack("<HH", code, len(v)) + _pad4(v) for code, v in opts)
    return out + struct.pack("<HH", OPT_END, 0)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _split_ts(ns: int) -> tuple[int, int]:
    return (ns >> 32) & 0xFFFFFFFF, ns & 0xFFFFFFFF


def _ts_option(code: int, ns: int) -> tuple[int, bytes]:
    return code, struct.pack("<II", *_split_ts(ns))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, as the 16-bit value to store."""
    if len(data) % 2:
        data += b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()  # sum as big-endian 16-bit words
    s = sum(words)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@functools.lru_cache(maxsize=4096)
def _packed(host: str) -> bytes:
    """An address's bytes (4 or 16); the few a capture has are cached."""
    return socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)


def ip_udp_packet(src: tuple[str, int], dst: tuple[str, int], payload: bytes, wire_len: int,
                  ip_id: int = 0) -> bytes:
    """An IPv4 or IPv6 packet (the family of ``src``) carrying a UDP datagram of
    ``wire_len`` bytes of which ``payload`` is what was kept: lengths say the whole
    datagram; the UDP checksum is computed when the payload is whole, else 0."""
    s_ip, d_ip = _packed(src[0]), _packed(dst[0])
    v4 = len(s_ip) == 4
    udp_len = 8 + wire_len
    whole = len(payload) == wire_len
    if v4:
        pseudo = s_ip + d_ip + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    else:
        pseudo = s_ip + d_ip + struct.pack("!IxxxB", udp_len, socket.IPPROTO_UDP)
    udp = struct.pack("!HHH", src[1], dst[1], udp_len)
    csum = checksum(pseudo + udp + b"\0\0" + payload) if whole else 0
    if whole and csum == 0:
        csum = 0xFFFF  # 0 means "no checksum" (RFC 768)
    udp += struct.pack("!H", csum)
    if v4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id & 0xFFFF, 0x4000, IP_TTL,
                          socket.IPPROTO_UDP, 0, s_ip, d_ip)
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    else:
        hdr = struct.pack("!IHBB16s16s", 0x60000000, udp_len, socket.IPPROTO_UDP, IP_TTL,
                          s_ip, d_ip)
    return hdr + udp + payload


#: an EPB's fixed part: type, length, interface, timestamp high and low, lengths
_EPB_HEAD = struct.Struct("<IIIIIII")
#: the options of an EPB without a comment, by direction (outbound?)
_EPB_OPTS = {o: _options([(EPB_FLAGS, struct.pack("<I", OUTBOUND if o else INBOUND))])
             for o in (False, True)}


class PcapngWriter:
    """Writes one section with one RAW interface to ``out`` (a binary file)."""

    def __init__(self, out: BinaryIO, if_name: str, if_description: str,
                 userappl: str = "rtudp tap") -> None:
        self.out = out
        self.packets = 0
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(
            [(SHB_USERAPPL, userappl.encode()), (SHB_OS, _os_name().encode())])
        idb = struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + _options(
            [(IF_NAME, if_name.encode()), (IF_DESCRIPTION, if_description.encode()),
             (IF_TSRESOL, bytes([9]))])
        out.write(_block(SHB, shb) + _block(IDB, idb))

    def packet(self, ts_ns: int, data: bytes, orig_len: int, outbound: bool,
               comment: str | None = None) -> None:
        """One Enhanced Packet Block: ``data`` captured of ``orig_len``, at ``ts_ns``
        (ns since the epoch)."""
        opts = _EPB_OPTS[outbound] if not comment else _options(
            [(EPB_FLAGS, struct.pack("<I", OUTBOUND if outbound else INBOUND)),
             (OPT_COMMENT, comment.encode())])
        pad = -len(data) % 4
        total = 32 + len(data) + pad + len(opts)
        self.out.write(_EPB_HEAD.pack(EPB, total, 0, (ts_ns >> 32) & 0xFFFFFFFF,
                                      ts_ns & 0xFFFFFFFF, len(data), orig_len)
                       + data + b"\0" * pad + opts + struct.pack("<I", total))
        self.packets += 1

    def statistics(self, ts_ns: int, start_ns: int, end_ns: int, received: int,
                   dropped: int, delivered: int) -> None:
        """The Interface Statistics Block: packets seen, dropped, written."""
        opts = [_ts_option(ISB_STARTTIME, start_ns), _ts_option(ISB_ENDTIME, end_ns),
                (ISB_IFRECV, struct.pack("<Q", received)), (ISB_IFDROP, struct.pack("<Q", dropped)),
                (ISB_USRDELIV, struct.pack("<Q", delivered))]
        body = struct.pack("<III", 0, *_split_ts(ts_ns)) + _options(opts)
        self.out.write(_block(ISB, body))

    def flush(self) -> None:
        """Hand what was written to the file (a live reader sees it)."""
        self.out.flush()


def _os_name() -> str:
    import platform

    return f"{platform.system()} {platform.release()}"


__all__ = ["INBOUND", "LINKTYPE_RAW", "OUTBOUND", "PcapngWriter", "checksum", "ip_udp_packet"]
