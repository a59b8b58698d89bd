// libudt_peer_scenario.h - libudt_peer's `peer` mode: one connection, set up in any of
// UDT's three ways, that sends and receives at once and reports what it got as
// CRC-32s (zlib's), so a test checks 200 MB both ways without holding it twice.
//
//   libudt_peer peer stream|dgram ROLE [key=value ...]
//     ROLE  listen                  bind 127.0.0.1:0, print "port N", accept one
//           connect:PORT            connect to 127.0.0.1:PORT
//           rendezvous:PORT         UDT_RENDEZVOUS, bind 127.0.0.1:0, print "port N",
//                                   then connect to 127.0.0.1:PORT
//     delay=MS        wait before connecting (rendezvous: who starts first)
//     seed=S          the pattern's seed (default 1)
//     send=N          stream: send N pattern bytes (a thread, while receiving)
//     expect=N        stream: receive N bytes, then print "recv N CRC"
//     msgs=A,B,...    dgram: send messages of these sizes (a thread), each printed as
//                     "sentmsg LEN CRC" before it goes
//     inorder=0|1     their in-order flag (default 1)
//     ttl=MS ttl_at=K message K (from 0) gets TTL MS, the others none
//     expect_msgs=K   dgram: receive K messages, each printed "msg LEN CRC"
//     wait_end=1      then receive until the connection ends: "end CODE"
//   Lines: "port N", "connected", "sent N CRC", "recv N CRC", "sentmsg/msg LEN CRC",
//   "end CODE", then "done" after the (lingering) close; or "error CODE what: text".
#ifndef RTUDP_LIBUDT_PEER_SCENARIO_H
#define RTUDP_LIBUDT_PEER_SCENARIO_H

#include <udt/udt.h>

#include "udt_peer_util.h"

#include <pthread.h>
#include <unistd.h>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;

// one whole line on stdout (the sender thread and the receiver both report)
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_out);
    std::vprintf(fmt, ap);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    pthread_mutex_unlock(&g_out);
    va_end(ap);
}

// zlib's CRC-32 (Python's zlib.crc32), continued from crc
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static bool ready = false; // (filled before any thread starts: see run_peer)
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

// the pattern: xorshift64* bytes
struct pattern_gen {
    uint64_t x;
    explicit pattern_gen(uint64_t seed) : x(seed * 0x9E3779B97F4A7C15ull | 1) {}
    void fill(char *p, size_t n)
    {
        for (size_t i = 0; i < n; i++) {
            if (i % 8 == 0) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
            }
            p[i] = (char)((x * 0x2545F4914F6CDD1Dull) >> (8 * (i % 8)));
        }
    }
};

struct scenario {
    bool dgram = false;
    std::string role;
    int port = 0, delay_ms = 0, ttl_ms = -1, ttl_at = -1, expect_msgs = 0;
    uint64_t seed = 1;
    long long send_n = 0, expect_n = 0;
    std::vector<int> msgs;
    bool inorder = true, wait_end = false;
    UDTSOCKET s = UDT::INVALID_SOCK;
    bool send_failed = false;
};

static bool parse_scenario(scenario &sc, int argc, char **argv)
{
    sc.dgram = std::strcmp(argv[2], "dgram") == 0;
    std::string role = argv[3];
    size_t colon = role.find(':');
    sc.role = role.substr(0, colon);
    if (colon != std::string::npos)
        sc.port = std::atoi(role.c_str() + colon + 1);
    for (int i = 4; i < argc; i++) {
        std::string kv = argv[i];
        size_t eq = kv.find('=');
        if (eq == std::string::npos)
            return false;
        std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "delay") sc.delay_ms = std::atoi(v.c_str());
        else if (k == "seed") sc.seed = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "send") sc.send_n = std::atoll(v.c_str());
        else if (k == "expect") sc.expect_n = std::atoll(v.c_str());
        else if (k == "inorder") sc.inorder = v != "0";
        else if (k == "ttl") sc.ttl_ms = std::atoi(v.c_str());
        else if (k == "ttl_at") sc.ttl_at = std::atoi(v.c_str());
        else if (k == "expect_msgs") sc.expect_msgs = std::atoi(v.c_str());
        else if (k == "wait_end") sc.wait_end = v != "0";
        else if (k == "msgs") {
            for (size_t p = 0; p < v.size();) {
                size_t c = v.find(',', p);
                sc.msgs.push_back(std::atoi(v.substr(p, c - p).c_str()));
                p = c == std::string::npos ? v.size() : c + 1;
            }
        } else
            return false;
    }
    return sc.role == "listen" || sc.role == "connect" || sc.role == "rendezvous";
}

static void *scenario_sender(void *arg)
{
    scenario &sc = *(scenario *)arg;
    pattern_gen gen(sc.seed);
    uint32_t crc = 0;
    long long total = 0;
    if (!sc.dgram) {
        std::vector<char> buf(1 << 20);
        while (total < sc.send_n) {
            int want = (int)std::min<long long>((long long)buf.size(), sc.send_n - total);
            gen.fill(buf.data(), (size_t)want);
            crc = crc32_update(crc, (const unsigned char *)buf.data(), (size_t)want);
            for (int off = 0; off < want;) {
                int r = UDT::send(sc.s, buf.data() + off, want - off, 0);
                if (r == UDT::ERROR) {
                    fail("send");
                    sc.send_failed = true;
                    return nullptr;
                }
                off += r;
            }
            total += want;
        }
    } else {
        for (size_t k = 0; k < sc.msgs.size(); k++) {
            std::vector<char> m((size_t)sc.msgs[k]);
            gen.fill(m.data(), m.size());
            uint32_t c = crc32_update(0, (const unsigned char *)m.data(), m.size());
            say("sentmsg %zu %u", m.size(), c);
            int ttl = (int)k == sc.ttl_at ? sc.ttl_ms : -1;
            if (UDT::sendmsg(sc.s, m.data(), (int)m.size(), ttl, sc.inorder) == UDT::ERROR) {
                fail("sendmsg");
                sc.send_failed = true;
                return nullptr;
            }
            crc = crc32_update(crc, (const unsigned char *)m.data(), m.size());
            total += (long long)m.size();
        }
    }
    say("sent %lld %u", total, crc);
    return nullptr;
}

// s set up as the role says; INVALID_SOCK after the error line
static UDTSOCKET scenario_connect(scenario &sc)
{
    UDTSOCKET s = UDT::socket(AF_INET, sc.dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (sc.role == "listen") {
        UDTSOCKET c = listen_accept_one(s);
        UDT::close(s);
        return c;
    }
    if (sc.role == "rendezvous") {
        bool yes = true;
        sockaddr_in me = loopback(0);
        if (UDT::setsockopt(s, 0, UDT_RENDEZVOUS, &yes, sizeof yes) == UDT::ERROR ||
            UDT::bind(s, (sockaddr *)&me, sizeof me) == UDT::ERROR) {
            fail("bind");
            return UDT::INVALID_SOCK;
        }
        int n = sizeof me;
        UDT::getsockname(s, (sockaddr *)&me, &n);
        say("port %d", ntohs(me.sin_port));
    }
    if (sc.delay_ms > 0)
        usleep((useconds_t)sc.delay_ms * 1000u);
    sockaddr_in peer = loopback(sc.port);
    if (UDT::connect(s, (sockaddr *)&peer, sizeof peer) == UDT::ERROR) {
        fail("connect");
        UDT::close(s);
        return UDT::INVALID_SOCK;
    }
    return s;
}

static int run_scenario(int argc, char **argv)
{
    scenario sc;
    if (argc < 4 || !parse_scenario(sc, argc, argv))
        return 64;
    crc32_update(0, nullptr, 0); // the table, before the threads
    sc.s = scenario_connect(sc);
    if (sc.s == UDT::INVALID_SOCK)
        return 2;
    say("connected");
    pthread_t sender;
    bool sending = sc.send_n > 0 || !sc.msgs.empty();
    if (sending && pthread_create(&sender, nullptr, scenario_sender, &sc) != 0)
        return 3;
    std::vector<char> buf(4 << 20);
    if (sc.expect_n > 0) {
        uint32_t crc = 0;
        long long total = 0;
        while (total < sc.expect_n) {
            int want = (int)std::min<long long>((long long)buf.size(), sc.expect_n - total);
            int r = UDT::recv(sc.s, buf.data(), want, 0);
            if (r == UDT::ERROR)
                break;
            crc = crc32_update(crc, (const unsigned char *)buf.data(), (size_t)r);
            total += r;
        }
        say("recv %lld %u", total, crc);
    }
    for (int k = 0; k < sc.expect_msgs; k++) {
        int r = UDT::recvmsg(sc.s, buf.data(), (int)buf.size());
        if (r == UDT::ERROR)
            break;
        say("msg %d %u", r, crc32_update(0, (const unsigned char *)buf.data(), (size_t)r));
    }
    if (sending)
        pthread_join(sender, nullptr);
    if (sc.wait_end) {
        for (;;) {
            int r = sc.dgram ? UDT::recvmsg(sc.s, buf.data(), (int)buf.size())
                             : UDT::recv(sc.s, buf.data(), (int)buf.size(), 0);
            if (r == UDT::ERROR) {
                say("end %d", UDT::getlasterror().getErrorCode());
                break;
            }
        }
    }
    UDT::close(sc.s); // linger: what was sent is delivered first
    say("done");
    return sc.send_failed ? 2 : 0;
}

#endif
