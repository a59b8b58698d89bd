/*
 * test_udt_interop.c - wire compatibility of csrc/udt with the real UDT 4.11
 * library (Debian's libudt-dev), on loopback.
 *
 * The test builds tests/c/udt_peer.cpp with c++ -ludt next to itself (never
 * committed as a binary) and runs it as a child process.  Without libudt-dev
 * or a C++ compiler each test is skipped, saying which (.ci/run installs them);
 * a peer that does not build where both are present fails.
 *
 *   relay:       libudt client -> our UDP relay -> libudt server; every
 *                datagram both ways must parse with udt_parse and carry what
 *                UDT 4.11 puts there (the four handshakes, data reassembling
 *                to the bytes sent, full/light ACKs, ACK2s, the NAK of a data
 *                packet the relay drops, its retransmission, shutdown)
 *   our client:  udt_hs client -> libudt server: connected, our data packet
 *                is acknowledged and received, our shutdown ends it
 *   our server:  libudt client -> udt_hs listener: connected (cookie and
 *                response accepted), its shutdown parsed; a DGRAM client is
 *                refused with 1002 and libudt reports ECONNREJ (1002)
 *   rendezvous:  udt_hs rendezvous <-> libudt rendezvous, both start orders
 */
#include "udt/udt_hs.h"
#include "udt/udt_losslist.h"
#include "udt/udt_seq.h"
#include "udt/udt_wire.h"

#define TEST_TIMEOUT_S 60u
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

static char g_peer[PATH_MAX + 64];

/* whether `c++` is on PATH */
static bool have_cxx(void)
{
    return system("command -v c++ >/dev/null 2>&1") == 0;
}

/* Build the peer once per test program run (the first test that needs it); skip the
 * test where this machine lacks libudt-dev or a C++ compiler. */
static void need_peer(void)
{
    if (access("/usr/include/udt/udt.h", R_OK) != 0)
        SKIP("libudt-dev is not installed (no /usr/include/udt/udt.h)");
    if (!have_cxx())
        SKIP("no C++ compiler: `c++` is not on PATH");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    CHECK(slash != NULL);
    *slash = 0;
    snprintf(g_peer, sizeof g_peer, "%s/udt_peer", exe);
    /* the source sits beside this file */
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s", __FILE__);
    slash = strrchr(src, '/');
    CHECK(slash != NULL);
    snprintf(slash, sizeof src - (size_t)(slash - src), "/udt_peer.cpp");
    struct stat ss, sp;
    CHECK(stat(src, &ss) == 0);
    if (stat(g_peer, &sp) == 0 && sp.st_mtime >= ss.st_mtime)
        return;
    /* built under a temporary name, then renamed: concurrent runs never see
     * a half-written program */
    char tmp[PATH_MAX + 96], cmd[3 * PATH_MAX + 256];
    snprintf(tmp, sizeof tmp, "%s.%d", g_peer, (int)getpid());
    snprintf(cmd, sizeof cmd, "c++ -O1 -o '%s' '%s' -ludt -lpthread", tmp, src);
    int built = system(cmd);
    if (built != 0) {
        unlink(tmp);
        fprintf(stderr, "building the libudt peer failed (status %d): %s\n", built, cmd);
    }
    CHECK_EQ(built, 0);
    CHECK(rename(tmp, g_peer) == 0);
}

/* ------------------------------------------------------------------ children */

struct child {
    pid_t pid;
    int out;          /* its stdout */
    char buf[4096];
    size_t len;
};

static void spawn(struct child *c, const char *const *args)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    c->pid = fork();
    CHECK(c->pid >= 0);
    if (c->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(g_peer, (char *const *)args);
        _exit(127);
    }
    close(p[1]);
    c->out = p[0];
    c->len = 0;
    fcntl(c->out, F_SETFL, O_NONBLOCK);
}

/* read what the child printed so far */
static void pump(struct child *c)
{
    for (;;) {
        if (c->len + 1 >= sizeof c->buf)
            return;
        ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (n <= 0)
            return;
        c->len += (size_t)n;
        c->buf[c->len] = 0;
    }
}

static const char *has_line(struct child *c, const char *prefix)
{
    pump(c);
    c->buf[c->len] = 0;
    const char *p = c->buf;
    while (p && *p) {
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            return p;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* wait for a line starting with prefix (ms budget) */
static const char *wait_line(struct child *c, const char *prefix, int ms)
{
    for (int i = 0; i < ms; i += 10) {
        const char *l = has_line(c, prefix);
        if (l)
            return l;
        usleep(10000);
    }
    return NULL;
}

/* exit status, or -1 if it had to be killed after ms */
static int reap(struct child *c, int ms)
{
    int st = 0;
    for (int i = 0; i <= ms; i += 10) {
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid) {
            pump(c);
            close(c->out);
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(10000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &st, 0);
    pump(c);
    close(c->out);
    return -1;
}

/* has it exited (without reaping it) */
static bool exited(struct child *c)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c->pid;
}

/* ------------------------------------------------------------------ sockets */

static int udp_socket(uint16_t *port)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t n = sizeof a;
    CHECK(getsockname(s, (struct sockaddr *)&a, &n) == 0);
    *port = ntohs(a.sin_port);
    return s;
}

static struct sockaddr_in lo_addr(uint16_t port)
{
    return (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static void send_to(int s, uint16_t port, const uint8_t *b, int n)
{
    CHECK(n > 0);
    struct sockaddr_in a = lo_addr(port);
    CHECK(sendto(s, b, (size_t)n, 0, (struct sockaddr *)&a, sizeof a) == n);
}

/* receive one datagram within ms (0: none); *from_port its source port */
static int recv_from(int s, uint8_t *b, size_t cap, int ms, uint16_t *from_port)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    ssize_t n = recvfrom(s, b, cap, 0, (struct sockaddr *)&a, &al);
    CHECK(n >= 0);
    *from_port = ntohs(a.sin_port);
    return (int)n;
}

static struct udt_addr udt_lo(uint16_t port)
{
    return (struct udt_addr){.family = 4, .ip = {127, 0, 0, 1}, .port = port};
}

static uint64_t now_us(void) { return (uint64_t)harness_now_ns() / 1000u; }

static unsigned char pattern(long i) { return (unsigned char)(i * 7 + 3); }

/* ------------------------------------------------------------------ relay */

#define RELAY_BYTES 300000
#define MAXPKT 1024

struct tally {
    int hs[4];          /* request, cookie reply, -1 request, -1 response */
    int data, ack_full, ack_short, ack_light, ack2, nak, keepalive, shutdown, other;
    int ctrl_ts_nonzero;
    uint32_t client_id, server_id, isn, cookie;
    uint32_t dropped_seq;
    bool dropped, nak_named_drop, retransmitted;
    uint32_t ackno_seen[64];
    int nackno;
    bool ack2_matches;
    /* data by sequence offset */
    uint16_t plen[MAXPKT];
    uint8_t *payload; /* MAXPKT x 1500 */
    int max_off;
};

static void relay_client_packet(struct tally *t, const uint8_t *b, int n, bool *drop)
{
    struct udt_pkt p;
    CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
    if (!p.is_ctrl) {
        t->data++;
        CHECK_EQ(p.data.dst_id, t->server_id);
        int32_t off = udt_seq_off(t->isn, p.data.seq);
        CHECK(off >= 0 && off < MAXPKT);
        CHECK(p.data.payload_len > 0 && p.data.payload_len <= 1456);
        if (t->plen[off]) {
            CHECK_EQ(t->plen[off], p.data.payload_len); /* a retransmission: same bytes */
            CHECK(memcmp(t->payload + (size_t)off * 1500, b + 16, p.data.payload_len) == 0);
            if (t->dropped && p.data.seq == t->dropped_seq)
                t->retransmitted = true;
        }
        t->plen[off] = (uint16_t)p.data.payload_len;
        memcpy(t->payload + (size_t)off * 1500, b + 16, p.data.payload_len);
        if (off > t->max_off)
            t->max_off = off;
        if (!t->dropped && t->data == 20) { /* lose the 20th data packet once */
            t->dropped = true;
            t->dropped_seq = p.data.seq;
            *drop = true;
        }
        return;
    }
    if (p.ctrl.timestamp != 0)
        t->ctrl_ts_nonzero++;
    const struct udt_handshake *h = &p.ctrl.u.hs;
    switch (p.ctrl.type) {
    case UDT_CT_HANDSHAKE:
        CHECK_EQ(h->version, 4);
        CHECK_EQ(h->sock_type, UDT_SOCK_STREAM);
        CHECK_EQ(h->mss, 1500);
        CHECK_EQ(h->flow_window, 8192);
        CHECK_EQ(p.ctrl.dst_id, 0);
        CHECK_EQ(h->peer_ip[0], 0x0100007Fu); /* 127.0.0.1, byte-reversed as x86 libudt sends */
        if (h->conn_type == UDT_HS_REQUEST) {
            CHECK_EQ(h->cookie, 0);
            t->hs[0]++;
            t->client_id = h->sock_id;
            t->isn = h->isn;
        } else {
            CHECK_EQ(h->conn_type, UDT_HS_RESPONSE);
            CHECK_EQ(h->cookie, t->cookie);
            CHECK_EQ(h->isn, t->isn);
            t->hs[2]++;
        }
        break;
    case UDT_CT_ACK2:
        t->ack2++;
        for (int i = 0; i < t->nackno; i++)
            if (t->ackno_seen[i] == p.ctrl.info)
                t->ack2_matches = true;
        break;
    case UDT_CT_KEEPALIVE: t->keepalive++; break;
    case UDT_CT_SHUTDOWN: t->shutdown++; break;
    default: t->other++; break;
    }
}

static void relay_server_packet(struct tally *t, const uint8_t *b, int n)
{
    struct udt_pkt p;
    CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
    CHECK(p.is_ctrl); /* the server sends no data here */
    if (p.ctrl.timestamp != 0)
        t->ctrl_ts_nonzero++;
    if (p.ctrl.type != UDT_CT_HANDSHAKE)
        CHECK_EQ(p.ctrl.dst_id, t->client_id);
    const struct udt_handshake *h = &p.ctrl.u.hs;
    switch (p.ctrl.type) {
    case UDT_CT_HANDSHAKE:
        CHECK_EQ(p.ctrl.dst_id, t->client_id);
        if (h->conn_type == UDT_HS_REQUEST) { /* the cookie reply echoes the request */
            t->hs[1]++;
            t->cookie = h->cookie;
            CHECK_EQ(h->isn, t->isn);
            CHECK_EQ(h->sock_id, t->client_id);
        } else {
            CHECK_EQ(h->conn_type, UDT_HS_RESPONSE);
            CHECK_EQ(h->isn, t->isn); /* adopted */
            CHECK(h->sock_id != 0);
            t->server_id = h->sock_id;
            CHECK_EQ(h->peer_ip[0], 0x0100007Fu);
            t->hs[3]++;
        }
        break;
    case UDT_CT_ACK: {
        const struct udt_ack *a = &p.ctrl.u.ack;
        CHECK(udt_seq_off(t->isn, a->ack_seq) >= 0);
        if (a->kind == UDT_ACK_LIGHT) {
            t->ack_light++;
            break;
        }
        if (a->kind == UDT_ACK_FULL)
            t->ack_full++;
        else
            t->ack_short++;
        CHECK(a->avail_buf >= 2 && a->avail_buf <= 8192);
        CHECK(a->rtt_us > 0);
        if (t->nackno < 64)
            t->ackno_seen[t->nackno++] = p.ctrl.info;
        break;
    }
    case UDT_CT_NAK:
        t->nak++;
        for (uint32_t i = 0; i < p.ctrl.u.nak.nwords; i++) {
            uint32_t w = udt_nak_word(b, &p.ctrl, i), lo = w & UDT_SEQ_MAX, hi = lo;
            if (w & 0x80000000u)
                hi = udt_nak_word(b, &p.ctrl, ++i);
            if (t->dropped && udt_seq_cmp(lo, t->dropped_seq) <= 0 &&
                udt_seq_cmp(t->dropped_seq, hi) <= 0)
                t->nak_named_drop = true;
        }
        break;
    case UDT_CT_KEEPALIVE: t->keepalive++; break;
    case UDT_CT_SHUTDOWN: t->shutdown++; break;
    default: t->other++; break;
    }
}

static void libudt_through_relay(void)
{
    need_peer();
    struct child srv, cli;
    const char *sargs[] = {g_peer, "server", "stream", NULL};
    spawn(&srv, sargs);
    const char *l = wait_line(&srv, "port ", 5000);
    CHECK(l != NULL);
    uint16_t sport = (uint16_t)atoi(l + 5), rport;
    int r = udp_socket(&rport);
    char rp[16], nb[16];
    snprintf(rp, sizeof rp, "%u", rport);
    snprintf(nb, sizeof nb, "%d", RELAY_BYTES);
    const char *cargs[] = {g_peer, "client", "stream", rp, nb, NULL};
    spawn(&cli, cargs);

    struct tally *t = calloc(1, sizeof *t);
    CHECK(t != NULL);
    t->payload = calloc(MAXPKT, 1500);
    CHECK(t->payload != NULL);
    uint16_t cport = 0;
    uint64_t deadline = now_us() + 20000000;
    uint8_t b[2048];
    while (now_us() < deadline) {
        uint16_t from;
        int n = recv_from(r, b, sizeof b, 20, &from);
        if (n > 0) {
            if (from == sport) {
                relay_server_packet(t, b, n);
                CHECK(cport != 0);
                send_to(r, cport, b, n);
            } else {
                cport = from;
                bool drop = false;
                relay_client_packet(t, b, n, &drop);
                if (!drop)
                    send_to(r, sport, b, n);
            }
        }
        if (has_line(&srv, "received") && exited(&cli))
            break;
    }
    int cst = reap(&cli, 5000), sst = reap(&srv, 5000);
    printf("client: %s", cli.buf);
    printf("server: %s", srv.buf);
    printf("relayed: handshakes %d/%d/%d/%d, data %d, ACK full %d short %d light %d, ACK2 %d, "
           "NAK %d, keep-alive %d, shutdown %d, other %d, control timestamps != 0: %d\n",
           t->hs[0], t->hs[1], t->hs[2], t->hs[3], t->data, t->ack_full, t->ack_short,
           t->ack_light, t->ack2, t->nak, t->keepalive, t->shutdown, t->other, t->ctrl_ts_nonzero);
    CHECK_EQ(cst, 0);
    CHECK_EQ(sst, 0);
    char want[64];
    snprintf(want, sizeof want, "received %d bad 0", RELAY_BYTES);
    CHECK(strstr(srv.buf, want) != NULL);
    CHECK(t->hs[0] >= 1 && t->hs[1] >= 1 && t->hs[2] >= 1 && t->hs[3] >= 1);
    CHECK(t->ack_full >= 1);
    CHECK(t->ack2 >= 1 && t->ack2_matches);
    CHECK(t->nak >= 1 && t->nak_named_drop);
    CHECK(t->retransmitted);
    CHECK(t->shutdown >= 1);
    CHECK_EQ(t->other, 0);
    CHECK_EQ(t->ctrl_ts_nonzero, 0); /* libudt sends control timestamps of 0 */
    /* the data packets reassemble to the bytes sent */
    long pos = 0;
    for (int off = 0; off <= t->max_off; off++) {
        CHECK(t->plen[off] > 0);
        for (int i = 0; i < t->plen[off]; i++)
            CHECK(t->payload[(size_t)off * 1500 + (size_t)i] == pattern(pos + i));
        pos += t->plen[off];
    }
    CHECK_EQ(pos, RELAY_BYTES);
    close(r);
    free(t->payload);
    free(t);
}

/* ------------------------------------------------------------------ our client */

static void our_client_libudt_server(void)
{
    need_peer();
    struct child srv;
    const char *sargs[] = {g_peer, "server", "stream", NULL};
    spawn(&srv, sargs);
    const char *l = wait_line(&srv, "port ", 5000);
    CHECK(l != NULL);
    uint16_t sport = (uint16_t)atoi(l + 5), uport;
    int u = udp_socket(&uport);

    struct udt_hs_config cfg = {.sock_type = UDT_SOCK_STREAM, .mss = 1500, .flow_window = 8192,
                                .sock_id = 0x1234567, .isn = 0x7FFFFFFF};
    struct udt_hs_conn c;
    struct udt_addr sa = udt_lo(sport);
    uint8_t out[2048], b[2048];
    send_to(u, sport, out, udt_hs_connect(&c, &cfg, false, &sa, now_us(), out, sizeof out));
    uint64_t deadline = now_us() + 5000000;
    while (c.state != UDT_HSS_CONNECTED && now_us() < deadline) {
        uint16_t from;
        int n = recv_from(u, b, sizeof b, 20, &from);
        int k = 0;
        if (n > 0) {
            struct udt_pkt p;
            CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
            k = udt_hs_on_packet(&c, &p, now_us(), out, sizeof out);
        } else {
            k = udt_hs_on_timer(&c, now_us(), out, sizeof out);
        }
        CHECK(k >= 0);
        if (k > 0)
            send_to(u, sport, out, k);
    }
    CHECK_EQ(c.state, UDT_HSS_CONNECTED);
    CHECK(c.result.peer_id != 0);
    CHECK_EQ(c.result.isn_recv, 0x7FFFFFFF);
    CHECK_EQ(c.result.mss, 1500);
    CHECK_EQ(c.result.peer_flow_window, 8192);
    CHECK_EQ(c.result.self_ip[0], 0x0100007Fu);

    /* two data packets of ours, crossing the 2^31 wrap; the server ACKs them */
    uint8_t pl[1000];
    for (int i = 0; i < 1000; i++)
        pl[i] = pattern(i);
    for (int i = 0; i < 2; i++) {
        struct udt_data d = {.seq = udt_seq_add(0x7FFFFFFF, i), .boundary = UDT_PB_SOLO,
                             .msgno = (uint32_t)i + 1, .timestamp = 1000,
                             .dst_id = c.result.peer_id};
        send_to(u, sport, out, udt_build_data(out, sizeof out, &d, pl + 500 * i, 500));
    }
    bool acked = false;
    deadline = now_us() + 3000000;
    while (!acked && now_us() < deadline) {
        uint16_t from;
        int n = recv_from(u, b, sizeof b, 20, &from);
        if (n <= 0)
            continue;
        struct udt_pkt p;
        CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
        CHECK(p.is_ctrl);
        CHECK_EQ(p.ctrl.dst_id, 0x1234567);
        if (p.ctrl.type == UDT_CT_ACK && p.ctrl.u.ack.kind != UDT_ACK_LIGHT &&
            p.ctrl.u.ack.ack_seq == 1) { /* 0x7FFFFFFF and 0 received */
            acked = true;
            /* answer with an ACK2, as a sender does */
            send_to(u, sport, out, udt_build_ack2(out, sizeof out, c.result.peer_id, 0, p.ctrl.info));
        }
    }
    CHECK(acked);
    /* our shutdown ends the server's recv */
    send_to(u, sport, out, udt_build_empty(out, sizeof out, UDT_CT_SHUTDOWN, c.result.peer_id, 0));
    CHECK_EQ(reap(&srv, 5000), 0);
    printf("server: %s", srv.buf);
    CHECK(strstr(srv.buf, "received 1000 bad 0") != NULL);
    close(u);
}

/* ------------------------------------------------------------------ our listener */

/* serve one libudt client on our listener; returns what the client printed */
static void serve(const char *type, struct child *cli, int *status, int *shutdowns, int *rejects)
{
    uint16_t lport;
    int s = udp_socket(&lport);
    struct udt_hs_config cfg = {.sock_type = UDT_SOCK_STREAM, .mss = 1500, .flow_window = 8192};
    const uint8_t secret[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    struct udt_hs_listener lst;
    CHECK_EQ(udt_hs_listener_init(&lst, &cfg, secret, now_us()), UDT_OK);
    char lp[16];
    snprintf(lp, sizeof lp, "%u", lport);
    const char *args[] = {g_peer, "connect", type, lp, NULL};
    spawn(cli, args);
    *shutdowns = *rejects = 0;
    uint64_t deadline = now_us() + 8000000;
    uint8_t b[2048], out[128];
    while (now_us() < deadline) {
        uint16_t from;
        int n = recv_from(s, b, sizeof b, 20, &from);
        if (n > 0) {
            struct udt_pkt p;
            CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
            CHECK(p.is_ctrl);
            if (p.ctrl.type == UDT_CT_HANDSHAKE && p.ctrl.dst_id == 0) {
                struct udt_addr fa = udt_lo(from);
                struct udt_hs_accept acc;
                int on = 0;
                int r = udt_hs_listen(&lst, &p.ctrl, &fa, now_us(), out, sizeof out, &on, &acc);
                if (r == UDT_LS_ACCEPT)
                    on = udt_hs_build_response(out, sizeof out, &lst, 0x777, &acc);
                if (r == UDT_LS_REJECT)
                    (*rejects)++;
                if (on > 0)
                    send_to(s, from, out, on);
            } else if (p.ctrl.type == UDT_CT_SHUTDOWN) {
                CHECK_EQ(p.ctrl.dst_id, 0x777);
                (*shutdowns)++;
            }
        }
        if (exited(cli))
            break;
    }
    *status = reap(cli, 5000);
    close(s);
}

static void libudt_client_our_listener(void)
{
    need_peer();
    struct child cli;
    int st, shut, rej;
    serve("stream", &cli, &st, &shut, &rej);
    printf("client: %s", cli.buf);
    CHECK_EQ(st, 0);
    CHECK(strstr(cli.buf, "connected") != NULL);
    CHECK_EQ(rej, 0);
    CHECK(shut >= 1); /* its close() said goodbye to socket 0x777 */
}

static void libudt_client_type_mismatch(void)
{
    need_peer();
    struct child cli;
    int st, shut, rej;
    serve("dgram", &cli, &st, &shut, &rej);
    printf("client: %s", cli.buf);
    CHECK_EQ(st, 2);
    CHECK(rej >= 1);
    CHECK(strstr(cli.buf, "error 1002") != NULL); /* libudt's ECONNREJ */
}

/* ------------------------------------------------------------------ rendezvous */

static uint16_t free_port(void)
{
    uint16_t p;
    int s = udp_socket(&p);
    close(s);
    return p;
}

static void rendezvous_with_libudt(bool libudt_first)
{
    need_peer();
    uint16_t uport, pport = free_port();
    int u = udp_socket(&uport);
    char a1[16], a2[16];
    snprintf(a1, sizeof a1, "%u", pport);
    snprintf(a2, sizeof a2, "%u", uport);
    const char *args[] = {g_peer, "rendezvous", "stream", a1, a2, NULL};
    struct child peer;
    uint8_t b[2048], out[128];
    if (libudt_first) {
        spawn(&peer, args);
        usleep(400000);
        /* what it sent before we started is lost */
        uint16_t from;
        while (recv_from(u, b, sizeof b, 0, &from) > 0) {
        }
    }
    struct udt_hs_config cfg = {.sock_type = UDT_SOCK_STREAM, .mss = 1500, .flow_window = 8192,
                                .sock_id = 0x4242, .isn = 12345};
    struct udt_hs_conn c;
    struct udt_addr pa = udt_lo(pport);
    send_to(u, pport, out, udt_hs_connect(&c, &cfg, true, &pa, now_us(), out, sizeof out));
    if (!libudt_first) {
        uint64_t until = now_us() + 400000;
        while (now_us() < until) {
            int k = udt_hs_on_timer(&c, now_us(), out, sizeof out);
            if (k > 0)
                send_to(u, pport, out, k);
            usleep(10000);
        }
        CHECK_EQ(c.state, UDT_HSS_REQUEST);
        spawn(&peer, args);
    }
    int shutdowns = 0;
    uint32_t peer_isn = 0;
    uint64_t deadline = now_us() + 10000000;
    while (now_us() < deadline) {
        uint16_t from;
        int n = recv_from(u, b, sizeof b, 20, &from);
        int k = 0;
        if (n > 0) {
            CHECK_EQ(from, pport);
            struct udt_pkt p;
            CHECK_EQ(udt_parse(b, (size_t)n, &p), UDT_OK);
            if (p.is_ctrl && p.ctrl.type == UDT_CT_HANDSHAKE && p.ctrl.u.hs.version == 4)
                peer_isn = p.ctrl.u.hs.isn;
            if (p.is_ctrl && p.ctrl.type == UDT_CT_SHUTDOWN) {
                CHECK_EQ(p.ctrl.dst_id, 0x4242);
                shutdowns++;
            }
            if (c.state == UDT_HSS_CONNECTED) {
                if (p.is_ctrl && p.ctrl.type == UDT_CT_HANDSHAKE)
                    k = udt_hs_connected_reply(&cfg, true, &c.result, &p.ctrl.u.hs, out, sizeof out);
            } else {
                k = udt_hs_on_packet(&c, &p, now_us(), out, sizeof out);
            }
        } else {
            k = udt_hs_on_timer(&c, now_us(), out, sizeof out);
        }
        CHECK(k >= 0);
        if (k > 0)
            send_to(u, pport, out, k);
        if (exited(&peer) && c.state == UDT_HSS_CONNECTED)
            break;
    }
    int st = reap(&peer, 5000);
    printf("libudt: %s", peer.buf);
    CHECK_EQ(st, 0);
    CHECK(strstr(peer.buf, "connected") != NULL);
    CHECK_EQ(c.state, UDT_HSS_CONNECTED);
    CHECK(c.result.peer_id != 0);
    CHECK_EQ(c.result.isn_send, 12345);
    CHECK_EQ(c.result.isn_recv, peer_isn);
    CHECK(shutdowns >= 1);
    close(u);
}

static void rendezvous_libudt_first(void) { rendezvous_with_libudt(true); }
static void rendezvous_ours_first(void) { rendezvous_with_libudt(false); }

static const struct test tests[] = {
    T(libudt_through_relay),
    T(our_client_libudt_server),
    T(libudt_client_our_listener),
    T(libudt_client_type_mismatch),
    T(rendezvous_libudt_first),
    T(rendezvous_ours_first),
};

HARNESS_MAIN(tests)
