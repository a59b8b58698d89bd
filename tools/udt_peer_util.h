// udt_peer_util.h - what the libudt peer programs share (tests/c/udt_peer.cpp for the C
// interop test, tools/libudt_peer.cpp for the Python tests and `rtudp bench udt`): a
// loopback address and libudt's last error printed as the one result line.
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

#endif
