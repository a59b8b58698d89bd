// libudt_peer.cpp - a real UDT 4.11 peer (Debian's libudt) for the udt tests and
// `rtudp bench udt` (rtudp.tools.bench.udt_peer builds it at run time with c++ -ludt when
// libudt-dev is installed; never shipped as a binary).  Results go to stdout as lines
// ("port N", "sent N", "done N").
//
//   libudt_peer server stream|dgram OUTFILE [times]
//       listen on 127.0.0.1:0, print the port, accept one connection, receive until
//       the peer closes; stream bytes go to OUTFILE as they are, messages each as a
//       4-byte little-endian length then the message; with "times", the done line
//       also gives when the first and the last bytes came (CLOCK_MONOTONIC s)
//   libudt_peer client stream|dgram PORT INFILE MSGSIZE [SECONDS]
//       connect to 127.0.0.1:PORT, send INFILE (stream: as it is; dgram: in messages
//       of MSGSIZE bytes, the last one shorter), close (linger: all is delivered);
//       with SECONDS, send INFILE over and over until then and close without linger
//   libudt_peer peer stream|dgram listen|connect:PORT|rendezvous:PORT [key=value ...]
//       one connection that sends and receives at once, reported as CRC-32s (the
//       interop tests: libudt_peer_scenario.h)
#include <udt/udt.h>

#include "libudt_peer_scenario.h"
#include "udt_peer_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

static double now_s()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int server(UDTSOCKET s, bool dgram, const char *path, bool times)
{
    UDTSOCKET c = listen_accept_one(s);
    if (c == UDT::INVALID_SOCK)
        return 2;
    FILE *out = std::fopen(path, "wb");
    if (!out)
        return 3;
    std::vector<char> buf(4 << 20);
    long total = 0;
    double first = 0, last = 0;
    for (;;) {
        int r = dgram ? UDT::recvmsg(c, buf.data(), (int)buf.size())
                      : UDT::recv(c, buf.data(), (int)buf.size(), 0);
        if (r == UDT::ERROR)
            break; // the peer closed
        if (dgram) {
            uint32_t len = (uint32_t)r;
            unsigned char le[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                                   (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
            std::fwrite(le, 1, 4, out);
        }
        std::fwrite(buf.data(), 1, (size_t)r, out);
        total += r;
        last = now_s();
        if (first == 0)
            first = last;
    }
    std::fclose(out);
    if (times)
        std::printf("done %ld %.6f %.6f\n", total, first, last);
    else
        std::printf("done %ld\n", total);
    std::fflush(stdout);
    UDT::close(c);
    return 0;
}

static int client(UDTSOCKET s, bool dgram, int port, const char *path, int msgsize,
                  double seconds)
{
    FILE *in = std::fopen(path, "rb");
    if (!in)
        return 3;
    std::vector<char> data;
    char chunk[65536];
    size_t k;
    while ((k = std::fread(chunk, 1, sizeof chunk, in)) > 0)
        data.insert(data.end(), chunk, chunk + k);
    std::fclose(in);
    sockaddr_in a = loopback(port);
    if (UDT::connect(s, (sockaddr *)&a, sizeof a) == UDT::ERROR)
        return fail("connect");
    size_t off = 0, total = 0;
    double end = now_s() + seconds;
    for (;;) {
        if (off >= data.size()) {
            if (seconds <= 0 || now_s() >= end)
                break;
            off = 0; // again, until the time is up
        }
        if (seconds > 0 && now_s() >= end)
            break;
        int want = (int)(dgram ? std::min((size_t)msgsize, data.size() - off)
                               : std::min((size_t)(1 << 20), data.size() - off));
        int r = dgram ? UDT::sendmsg(s, data.data() + off, want, -1, true)
                      : UDT::send(s, data.data() + off, want, 0);
        if (r == UDT::ERROR)
            return fail("send");
        off += (size_t)r;
        total += (size_t)r;
    }
    if (seconds > 0) {
        linger no = {0, 0};
        UDT::setsockopt(s, 0, UDT_LINGER, &no, sizeof no);
    }
    std::printf("sent %zu\n", total);
    std::fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 64;
    bool dgram = std::strcmp(argv[2], "dgram") == 0;
    UDT::startup();
    if (std::strcmp(argv[1], "peer") == 0) {
        int rc = run_scenario(argc, argv);
        UDT::cleanup();
        return rc;
    }
    UDTSOCKET s = UDT::socket(AF_INET, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
    int rc = 64;
    if (std::strcmp(argv[1], "server") == 0)
        rc = server(s, dgram, argv[3], argc >= 5 && std::strcmp(argv[4], "times") == 0);
    else if (std::strcmp(argv[1], "client") == 0 && argc >= 6)
        rc = client(s, dgram, std::atoi(argv[3]), argv[4], std::atoi(argv[5]),
                    argc >= 7 ? std::atof(argv[6]) : 0.0);
    UDT::close(s); // linger: what was sent is delivered first
    UDT::cleanup();
    return rc;
}
