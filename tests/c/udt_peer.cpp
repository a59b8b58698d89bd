// udt_peer.cpp - a real UDT 4.11 peer (Debian's libudt) for test_udt_interop.c.
//
// test_udt_interop builds this at run time (c++ ... -ludt) when libudt-dev is
// installed, runs it on loopback and checks that csrc/udt parses every packet
// it sends and that our handshake state machines connect to it.  Never
// committed as a binary.  All addresses are 127.0.0.1; results go to stdout
// as one line ("port N", "connected", "received N SUM", "error CODE").
//
//   udt_peer server  stream|dgram            listen on port 0, print it, accept
//                                            one, receive until the peer closes
//   udt_peer client  stream|dgram PORT BYTES connect, send BYTES (pattern), close
//   udt_peer connect stream|dgram PORT       connect, then close (no data)
//   udt_peer rendezvous stream|dgram MYPORT PEERPORT
#include <udt/udt.h>

#include "../../tools/bench/udt_peer_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

static unsigned char pattern(long i) { return (unsigned char)(i * 7 + 3); }

int main(int argc, char **argv)
{
    if (argc < 3)
        return 64;
    const char *mode = argv[1];
    int type = std::strcmp(argv[2], "dgram") == 0 ? SOCK_DGRAM : SOCK_STREAM;
    UDT::startup();
    UDTSOCKET s = UDT::socket(AF_INET, type, 0);
    bool no_linger_wait = false;
    int rc = 0;

    if (std::strcmp(mode, "server") == 0) {
        UDTSOCKET c = listen_accept_one(s);
        if (c == UDT::INVALID_SOCK)
            return 2;
        long total = 0, bad = 0;
        std::vector<char> buf(1 << 16);
        for (;;) {
            int got = type == SOCK_DGRAM ? UDT::recvmsg(c, buf.data(), (int)buf.size())
                                         : UDT::recv(c, buf.data(), (int)buf.size(), 0);
            if (got <= 0)
                break;
            for (int i = 0; i < got; i++)
                if ((unsigned char)buf[i] != pattern(total + i))
                    bad++;
            total += got;
        }
        std::printf("received %ld bad %ld\n", total, bad);
        UDT::close(c);
    } else if (std::strcmp(mode, "client") == 0 || std::strcmp(mode, "connect") == 0) {
        if (argc < 4)
            return 64;
        sockaddr_in a = loopback(std::atoi(argv[3]));
        if (UDT::connect(s, (sockaddr *)&a, sizeof a) == UDT::ERROR)
            return fail("connect");
        std::printf("connected\n");
        std::fflush(stdout);
        if (std::strcmp(mode, "client") == 0) {
            long n = argc > 4 ? std::atol(argv[4]) : 0;
            std::vector<char> buf((size_t)n);
            for (long i = 0; i < n; i++)
                buf[(size_t)i] = (char)pattern(i);
            long off = 0;
            while (off < n) {
                int chunk = (int)(n - off > 100000 ? 100000 : n - off);
                int sent = type == SOCK_DGRAM ? UDT::sendmsg(s, buf.data() + off, chunk)
                                              : UDT::send(s, buf.data() + off, chunk, 0);
                if (sent <= 0)
                    return fail("send");
                off += sent;
            }
            std::printf("sent %ld\n", off);
        } else {
            no_linger_wait = true;
        }
    } else if (std::strcmp(mode, "rendezvous") == 0) {
        if (argc < 5)
            return 64;
        bool yes = true;
        UDT::setsockopt(s, 0, UDT_RENDEZVOUS, &yes, sizeof yes);
        sockaddr_in me = loopback(std::atoi(argv[3])), peer = loopback(std::atoi(argv[4]));
        if (UDT::bind(s, (sockaddr *)&me, sizeof me) == UDT::ERROR)
            return fail("bind");
        if (UDT::connect(s, (sockaddr *)&peer, sizeof peer) == UDT::ERROR)
            return fail("connect");
        std::printf("connected\n");
        std::fflush(stdout);
        // stay a second, as an application would: the other side may still
        // need our -2 reply to its next handshake (if our -1 was the last
        // packet it needed, it completes only on that or on our traffic)
        usleep(1000000);
        no_linger_wait = true;
    } else {
        return 64;
    }
    if (no_linger_wait) {
        linger l = {0, 0};
        UDT::setsockopt(s, 0, UDT_LINGER, &l, sizeof l);
    }
    UDT::close(s);
    std::fflush(stdout);
    UDT::cleanup();
    return rc;
}
