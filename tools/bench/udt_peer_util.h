// udt_peer_util.h - what the libudt peer programs share (tests/c/udt_peer.cpp for the C
// interop test, tools/bench/libudt_peer.cpp for the Python tests and `rtudp bench udt`): a
// loopback address, libudt's last error printed as the one result line, and the
// server's start: listen on a free loopback port, print it, accept one connection.
#ifndef RTUDP_UDT_PEER_UTIL_H
#define RTUDP_UDT_PEER_UTIL_H

#include <udt/udt.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cstdint>
#include <cstdio>
#include <cstring>

static sockaddr_in loopback(int port)
{
    sockaddr_in a;
    std::memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int fail(const char *what)
{
    std::printf("error %d %s: %s\n", UDT::getlasterror().getErrorCode(), what,
                UDT::getlasterror().getErrorMessage());
    std::fflush(stdout);
    return 2;
}

// s bound to 127.0.0.1:0 and listening, "port N" printed (the caller connects to
// it), one connection accepted; INVALID_SOCK after the error line is printed
static UDTSOCKET listen_accept_one(UDTSOCKET s)
{
    sockaddr_in a = loopback(0);
    if (UDT::bind(s, (sockaddr *)&a, sizeof a) == UDT::ERROR || UDT::listen(s, 4) == UDT::ERROR) {
        fail("listen");
        return UDT::INVALID_SOCK;
    }
    int n = sizeof a;
    UDT::getsockname(s, (sockaddr *)&a, &n);
    std::printf("port %d\n", ntohs(a.sin_port));
    std::fflush(stdout);
    UDTSOCKET c = UDT::accept(s, (sockaddr *)&a, &n);
    if (c == UDT::INVALID_SOCK)
        fail("accept");
    return c;
}

#endif
