"""UDT4's constants with UDT's values (udt.h), and its exception."""
from __future__ import annotations

# ------------------------------------------------------------ socket options (UDTOpt)
UDT_MSS = 0
UDT_SNDSYN = 1
UDT_RCVSYN = 2
UDT_CC = 3
UDT_FC = 4
UDT_SNDBUF = 5
UDT_RCVBUF = 6
UDT_LINGER = 7
UDP_SNDBUF = 8
UDP_RCVBUF = 9
UDT_MAXMSG = 10
UDT_MSGTTL = 11
UDT_RENDEZVOUS = 12
UDT_SNDTIMEO = 13
UDT_RCVTIMEO = 14
UDT_REUSEADDR = 15
UDT_MAXBW = 16
UDT_STATE = 17
UDT_EVENT = 18
UDT_SNDDATA = 19
UDT_RCVDATA = 20
#: PyUDT's misspelling, kept for its users
UDT_RCVDATE = UDT_RCVDATA

# ------------------------------------------------------------ socket states (UDTSTATUS)
INIT = 1
OPENED = 2
LISTENING = 3
CONNECTING = 4
CONNECTED = 5
BROKEN = 6
CLOSING = 7
CLOSED = 8
NONEXIST = 9
STATUS_NAMES = {INIT: "INIT", OPENED: "OPENED", LISTENING: "LISTENING",
                CONNECTING: "CONNECTING", CONNECTED: "CONNECTED", BROKEN: "BROKEN",
                CLOSING: "CLOSING", CLOSED: "CLOSED", NONEXIST: "NONEXIST"}

# ------------------------------------------------------------ epoll events
UDT_EPOLL_IN = 0x1
UDT_EPOLL_OUT = 0x4
UDT_EPOLL_ERR = 0x8

# ------------------------------------------------------------ errors (CUDTException)
SUCCESS = 0
ECONNSETUP = 1000
ENOSERVER = 1001
ECONNREJ = 1002
ESOCKFAIL = 1003
ESECFAIL = 1004
ECONNFAIL = 2000
ECONNLOST = 2001
ENOCONN = 2002
ERESOURCE = 3000
ETHREAD = 3001
ENOBUF = 3002
EFILE = 4000
EINVRDOFF = 4001
ERDPERM = 4002
EINVWROFF = 4003
EWRPERM = 4004
EINVOP = 5000
EBOUNDSOCK = 5001
ECONNSOCK = 5002
EINVPARAM = 5003
EINVSOCK = 5004
EUNBOUNDSOCK = 5005
ENOLISTEN = 5006
ERDVNOSERV = 5007
ERDVUNBOUND = 5008
ESTREAMILL = 5009
EDGRAMILL = 5010
EDUPLISTEN = 5011
ELARGEMSG = 5012
EINVPOLLID = 5013
EASYNCFAIL = 6000
EASYNCSND = 6001
EASYNCRCV = 6002
ETIMEOUT = 6003
EPEERERR = 7000
EUNKNOWN = -1

#: libudt's messages (CUDTException::getErrorMessage, major and minor joined)
MESSAGES = {
    SUCCESS: "Success",
    ECONNSETUP: "Connection setup failure",
    ENOSERVER: "Connection setup failure: connection time out",
    ECONNREJ: "Connection setup failure: connection was rejected by peer",
    ESOCKFAIL: "Connection setup failure: unable to create/configure UDP socket",
    ESECFAIL: "Connection setup failure: abort for security reasons",
    ECONNFAIL: "Connection was broken",
    ECONNLOST: "Connection was broken: connection was lost",
    ENOCONN: "Connection was broken: connection does not exist",
    ERESOURCE: "System resource failure",
    ETHREAD: "System resource failure: unable to create new threads",
    ENOBUF: "System resource failure: unable to allocate buffers",
    EFILE: "File system failure",
    EINVRDOFF: "File system failure: cannot seek read position",
    ERDPERM: "File system failure: failure in read",
    EINVWROFF: "File system failure: cannot seek write position",
    EWRPERM: "File system failure: failure in write",
    EINVOP: "Operation not supported",
    EBOUNDSOCK: "Operation not supported: Cannot do this operation on a BOUND socket",
    ECONNSOCK: "Operation not supported: Cannot do this operation on a CONNECTED socket",
    EINVPARAM: "Operation not supported: Bad parameters",
    EINVSOCK: "Operation not supported: Invalid socket ID",
    EUNBOUNDSOCK: "Operation not supported: Cannot do this operation on an UNBOUND socket",
    ENOLISTEN: "Operation not supported: Socket is not in listening state",
    ERDVNOSERV: "Operation not supported: Listen/accept is not supported in rendezous "
                "connection setup",
    ERDVUNBOUND: "Operation not supported: Cannot call connect on UNBOUND socket in "
                 "rendezvous connection setup",
    ESTREAMILL: "Operation not supported: This operation is not supported in SOCK_STREAM mode",
    EDGRAMILL: "Operation not supported: This operation is not supported in SOCK_DGRAM mode",
    EDUPLISTEN: "Operation not supported: Another socket is already listening on the same port",
    ELARGEMSG: "Operation not supported: Message is too large to send (it must be less than "
               "the UDT send buffer size)",
    EINVPOLLID: "Operation not supported: Invalid epoll ID",
    EASYNCFAIL: "Non-blocking call failure",
    EASYNCSND: "Non-blocking call failure: no buffer available for sending",
    EASYNCRCV: "Non-blocking call failure: no data available for reading",
    ETIMEOUT: "Non-blocking call failure: transmission timed out",
    EPEERERR: "The peer side has signalled an error",
    EUNKNOWN: "Unknown error",
}


class UDTException(RuntimeError):
    """A UDT error: ``args`` are (code, message), ``code`` UDT's error number."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code, message if message is not None else MESSAGES.get(code, "Unknown error"))

    @property
    def code(self) -> int:
        """UDT's error code (ECONNLOST, ...)."""
        return int(self.args[0])

    @property
    def message(self) -> str:
        """The error's text."""
        return str(self.args[1])
