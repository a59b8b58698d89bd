/*
 * udt_relay.c - a UDP impairment relay on loopback for the udt tests and
 * `rtudp bench udt` (rtudp.tools.bench.udt_relay builds it at run time with cc; never
 * shipped as a binary).  It forwards datagrams between one client and a server,
 * both ways, dropping a fraction at random (seeded: the same packets meet the same
 * fate), delaying each by a fixed time plus up to a jitter, and holding some back
 * by an extra gap so later ones overtake them.  One thread, recvmmsg/sendmmsg in
 * batches, so it forwards at loopback speed where the Python relay it replaces
 * capped the benchmark at about 100 Mb/s.
 *
 * A bottleneck (rate_mbps > 0), each direction its own: a link of that rate with a
 * drop-tail queue in front, as a WAN path's slowest hop.  A datagram the random loss
 * spared joins the queue unless it is full, leaves the link when the ones before it
 * and its own wire time ((length + 28 IPv4/UDP header bytes) * 8 / rate) are done,
 * and then takes the delay.  The queue is full when queue_pkts datagrams are in it
 * (the one on the link counted), or when the new one would wait more than queue_us
 * for the link.  The model is deterministic in the arrival times, and the random
 * loss draws the same numbers with or without it, so a seed gives the same losses.
 *
 *   udt_relay SERVER_PORT [loss=P] [loss_back=P] [delay_us=N] [jitter_us=N]
 *             [reorder=P] [reorder_gap_us=N] [seed=N] [queue=N]
 *             [rate_mbps=R] [queue_pkts=N] [queue_us=N]
 *
 * Listens on 127.0.0.1:0 and prints "port N".  The first address that sends to
 * that port is the client (the latest one, as it moves); what the server sends
 * back goes to it.  loss applies to both directions unless loss_back says
 * otherwise.  Commands on stdin, one a line: "stats" prints a line
 * "stats key=value ..." (per direction: fwd = client -> server, back = server ->
 * client; in, dropped, passed, reordered (sent after a datagram that came later),
 * overflow (dropped: the delay line, `queue` datagrams, was full), errors (the send
 * failed), qdropped (dropped: the bottleneck's queue was full), qmax (the most
 * datagrams its queue held)).  EOF on stdin or SIGTERM: the stats line, then exit 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DGRAM 65536
#define SOCK_BUF (4 << 20)

enum { FWD = 0, BACK = 1 };

struct dir_stats {
    uint64_t in, dropped, passed, reordered, overflow, errors, qdropped, qmax;
    uint64_t arrival;     /* datagrams that came this way (their arrival index) */
    uint64_t max_sent;    /* largest arrival index + 1 sent so far */
};

/* a held datagram: released at `at` (ns); ties keep arrival order */
struct held {
    int64_t at;
    uint64_t order;
    uint64_t arrival;
    uint32_t len;
    uint8_t dir;
    uint8_t *data;
};

/* one direction's bottleneck: when the link is free, and (queue_pkts) when each
 * datagram in the queue leaves it, oldest first */
struct link {
    int64_t free_at;
    int64_t *leave;
    uint32_t head, n;
};

struct relay {
    int front, back;
    struct sockaddr_in server, client;
    int have_client;
    double loss[2];
    int64_t delay_ns, jitter_ns, reorder_gap_ns;
    double reorder;
    double rate_bps;          /* 0: no bottleneck */
    uint32_t queue_pkts;      /* 0: no limit in datagrams */
    int64_t queue_ns;         /* 0: no limit in waiting time */
    struct link link[2];
    uint64_t rng[2];
    struct held *heap;
    uint32_t n, cap;
    uint64_t order;
    struct dir_stats st[2];
};

static volatile sig_atomic_t stop_now;

static void on_term(int sig)
{
    (void)sig;
    stop_now = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* splitmix64: one stream per direction, so each direction's fate depends only on
 * its own datagrams */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int before(const struct held *a, const struct held *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(struct relay *r, struct held h)
{
    uint32_t i = r->n++;
    r->heap[i] = h;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(&r->heap[i], &r->heap[p]))
            break;
        struct held t = r->heap[i];
        r->heap[i] = r->heap[p];
        r->heap[p] = t;
        i = p;
    }
}

static struct held heap_pop(struct relay *r)
{
    struct held top = r->heap[0];
    r->heap[0] = r->heap[--r->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < r->n && before(&r->heap[l], &r->heap[m]))
            m = l;
        if (l + 1 < r->n && before(&r->heap[l + 1], &r->heap[m]))
            m = l + 1;
        if (m == i)
            break;
        struct held t = r->heap[i];
        r->heap[i] = r->heap[m];
        r->heap[m] = t;
        i = m;
    }
    return top;
}

static void print_stats(const struct relay *r)
{
    static const char *name[2] = {"fwd", "back"};
    printf("stats");
    for (int d = 0; d < 2; d++) {
        const struct dir_stats *s = &r->st[d];
        printf(" %s_in=%llu %s_dropped=%llu %s_passed=%llu %s_reordered=%llu %s_overflow=%llu "
               "%s_errors=%llu %s_qdropped=%llu %s_qmax=%llu",
               name[d], (unsigned long long)s->in, name[d], (unsigned long long)s->dropped,
               name[d], (unsigned long long)s->passed, name[d], (unsigned long long)s->reordered,
               name[d], (unsigned long long)s->overflow, name[d], (unsigned long long)s->errors,
               name[d], (unsigned long long)s->qdropped, name[d], (unsigned long long)s->qmax);
    }
    printf(" held=%u\n", r->n);
    fflush(stdout);
}

/* send n datagrams of one direction at once; counted */
static void send_out(struct relay *r, int dir, uint8_t *const *data, const uint32_t *len,
                     const uint64_t *arrival, int n)
{
    struct dir_stats *s = &r->st[dir];
    uint64_t errors = s->errors;
    if (dir == BACK && !r->have_client) {
        s->errors += (uint64_t)n;
        return;
    }
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    int fd = dir == FWD ? r->back : r->front;
    struct sockaddr_in *to = dir == FWD ? &r->server : &r->client;
    for (int i = 0; i < n; i++) {
        iov[i] = (struct iovec){.iov_base = data[i], .iov_len = len[i]};
        m[i].msg_hdr = (struct msghdr){.msg_name = to, .msg_namelen = sizeof *to,
                                       .msg_iov = &iov[i], .msg_iovlen = 1};
        m[i].msg_len = 0;
    }
    int off = 0;
    while (off < n) {
        int k = sendmmsg(fd, m + off, (unsigned)(n - off), 0);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
                /* the receiver's queue is full: that is loss the path itself had */
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, 1) > 0)
                    continue;
            }
            s->errors++;
            off++;
            continue;
        }
        off += k;
    }
    for (int i = 0; i < n; i++) {
        if (arrival[i] + 1 < s->max_sent)
            s->reordered++;
        else
            s->max_sent = arrival[i] + 1;
    }
    s->passed += (uint64_t)n - (s->errors - errors);
}

/* what is due in the queue, in batches per direction */
static void release_due(struct relay *r, int64_t now)
{
    while (r->n && r->heap[0].at <= now) {
        uint8_t *data[BATCH];
        uint32_t len[BATCH];
        uint64_t arr[BATCH];
        int dir = r->heap[0].dir, n = 0;
        while (n < BATCH && r->n && r->heap[0].at <= now && r->heap[0].dir == dir) {
            struct held h = heap_pop(r);
            data[n] = h.data;
            len[n] = h.len;
            arr[n] = h.arrival;
            n++;
        }
        send_out(r, dir, data, len, arr, n);
        for (int i = 0; i < n; i++)
            free(data[i]);
    }
}

/* A datagram of len bytes reaches direction dir's bottleneck at now: when it has
 * crossed the link, or -1 when the queue is full (drop-tail). */
static int64_t through_link(struct relay *r, int dir, uint32_t len, int64_t now)
{
    struct link *l = &r->link[dir];
    struct dir_stats *s = &r->st[dir];
    while (l->n && l->leave[l->head] <= now) { /* gone: out of the queue */
        l->head = (l->head + 1) % r->queue_pkts;
        l->n--;
    }
    int64_t start = l->free_at > now ? l->free_at : now;
    if ((r->queue_pkts && l->n >= r->queue_pkts) || (r->queue_ns && start - now > r->queue_ns)) {
        s->qdropped++;
        return -1;
    }
    /* its wire time: payload and the 28 bytes of IPv4 and UDP headers */
    int64_t wire = (int64_t)((double)(len + 28u) * 8e9 / r->rate_bps + 0.5);
    l->free_at = start + (wire > 0 ? wire : 1);
    if (r->queue_pkts) {
        l->leave[(l->head + l->n) % r->queue_pkts] = l->free_at;
        l->n++;
        if (l->n > s->qmax)
            s->qmax = l->n;
    } else if (s->qmax < 1) {
        s->qmax = 1;
    }
    return l->free_at;
}

/* read a batch from one side: dropped, sent at once (nothing to wait for and nothing
 * held before it), or held */
static int take_batch(struct relay *r, int dir)
{
    static uint8_t bufs[BATCH][MAX_DGRAM];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in src[BATCH];
    int fd = dir == FWD ? r->front : r->back;
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MAX_DGRAM};
        m[i].msg_hdr = (struct msghdr){.msg_name = &src[i], .msg_namelen = sizeof src[i],
                                       .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fd, m, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    int64_t now = now_ns();
    struct dir_stats *s = &r->st[dir];
    uint8_t *now_data[BATCH];
    uint32_t now_len[BATCH];
    uint64_t now_arr[BATCH];
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint64_t arrival = s->arrival++;
        s->in++;
        if (dir == FWD) {
            r->client = src[i];
            r->have_client = 1;
        } else if (src[i].sin_port != r->server.sin_port) {
            continue; /* not from the server */
        }
        if (r->loss[dir] > 0 && uniform(&r->rng[dir]) < r->loss[dir]) {
            s->dropped++;
            continue;
        }
        int64_t wait = r->delay_ns;
        if (r->jitter_ns)
            wait += (int64_t)(uniform(&r->rng[dir]) * (double)r->jitter_ns);
        if (r->reorder > 0 && uniform(&r->rng[dir]) < r->reorder)
            wait += r->reorder_gap_ns;
        uint32_t len = m[i].msg_len;
        if (r->rate_bps > 0) {
            /* the random draws are done: the same seed loses the same datagrams */
            int64_t left = through_link(r, dir, len, now);
            if (left < 0)
                continue;
            wait += left - now;
        }
        if (wait == 0 && r->n == 0) {
            now_data[k] = bufs[i];
            now_len[k] = len;
            now_arr[k] = arrival;
            k++;
            continue;
        }
        if (k) { /* keep order: what came before goes before */
            send_out(r, dir, now_data, now_len, now_arr, k);
            k = 0;
        }
        if (r->n >= r->cap) {
            s->overflow++;
            continue;
        }
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy) {
            s->overflow++;
            continue;
        }
        memcpy(copy, bufs[i], len);
        heap_push(r, (struct held){.at = now + wait, .order = r->order++, .arrival = arrival,
                                   .len = len, .dir = (uint8_t)dir, .data = copy});
    }
    if (k)
        send_out(r, dir, now_data, now_len, now_arr, k);
    return n;
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int b = SOCK_BUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* "key=value" into the relay's settings; 0 = fine */
static int option(struct relay *r, const char *arg, uint64_t *seed)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return -1;
    size_t kl = (size_t)(eq - arg);
    char *end;
    double v = strtod(eq + 1, &end);
    if (*end || end == eq + 1 || !(v >= 0))
        return -1;
#define KEY(s) (kl == sizeof(s) - 1 && strncmp(arg, s, kl) == 0)
    if (KEY("loss") && v <= 1)
        r->loss[FWD] = r->loss[BACK] = v;
    else if (KEY("loss_back") && v <= 1)
        r->loss[BACK] = v;
    else if (KEY("delay_us") && v < 1e9)
        r->delay_ns = (int64_t)(v * 1000);
    else if (KEY("jitter_us") && v < 1e9)
        r->jitter_ns = (int64_t)(v * 1000);
    else if (KEY("reorder") && v <= 1)
        r->reorder = v;
    else if (KEY("reorder_gap_us") && v < 1e9)
        r->reorder_gap_ns = (int64_t)(v * 1000);
    else if (KEY("seed") && v < 1.8e19)
        *seed = (uint64_t)v;
    else if (KEY("queue") && v >= 1 && v <= 1 << 24)
        r->cap = (uint32_t)v;
    else if (KEY("rate_mbps") && v >= 0.001 && v <= 1e6)
        r->rate_bps = v * 1e6;
    else if (KEY("queue_pkts") && v >= 1 && v <= 1 << 24 && v == (double)(uint32_t)v)
        r->queue_pkts = (uint32_t)v;
    else if (KEY("queue_us") && v >= 1 && v < 1e9)
        r->queue_ns = (int64_t)(v * 1000);
    else
        return -1;
#undef KEY
    return 0;
}

/* what stdin has now (read(), not stdio: poll must see every line); each "stats"
 * line answered.  1 = go on, 0 = EOF */
static int read_commands(struct relay *r)
{
    static char line[256];
    static size_t have;
    ssize_t got = read(0, line + have, sizeof line - 1 - have);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN;
    if (got == 0)
        return 0;
    have += (size_t)got;
    char *nl;
    while ((nl = memchr(line, '\n', have)) != NULL) {
        if (strncmp(line, "stats", 5) == 0)
            print_stats(r);
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have - used);
        have -= used;
    }
    if (have == sizeof line - 1)
        have = 0; /* a line that long is no command */
    return 1;
}

int main(int argc, char **argv)
{
    struct relay r = {.reorder_gap_ns = 1000000, .cap = 65536};
    uint64_t seed = 1;
    char *end;
    long port = argc >= 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc < 2 || *end || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: udt_relay SERVER_PORT [key=value ...]\n");
        return 64;
    }
    for (int i = 2; i < argc; i++)
        if (option(&r, argv[i], &seed) != 0) {
            fprintf(stderr, "udt_relay: bad option %s\n", argv[i]);
            return 64;
        }
    r.rng[FWD] = seed * 2 + 1;
    r.rng[BACK] = seed * 2 + 2;
    r.server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if ((r.queue_pkts || r.queue_ns) && !(r.rate_bps > 0)) {
        fprintf(stderr, "udt_relay: queue_pkts and queue_us need rate_mbps\n");
        return 64;
    }
    if (r.queue_pkts > r.cap)
        r.cap = r.queue_pkts; /* the delay line holds at least what the queues may */
    r.heap = calloc(r.cap, sizeof *r.heap);
    for (int d = 0; d < 2 && r.queue_pkts; d++) {
        r.link[d].leave = calloc(r.queue_pkts, sizeof *r.link[d].leave);
        if (!r.link[d].leave) {
            perror("udt_relay");
            return 70;
        }
    }
    /* a link of 100 Mb/s sends a datagram every ~120 us: wake-ups to the us, not
     * the default 50 us slack */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    r.front = udp_socket();
    r.back = udp_socket();
    if (!r.heap || r.front < 0 || r.back < 0) {
        perror("udt_relay");
        return 70;
    }
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    getsockname(r.front, (struct sockaddr *)&me, &ml);
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("port %u\n", ntohs(me.sin_port));
    fflush(stdout);
    int in_open = 1;
    while (!stop_now) {
        int64_t now = now_ns();
        release_due(&r, now);
        struct pollfd p[3] = {{.fd = r.front, .events = POLLIN}, {.fd = r.back, .events = POLLIN},
                              {.fd = in_open ? 0 : -1, .events = POLLIN}};
        struct timespec ts = {.tv_sec = 1}, *tp = &ts;
        if (r.n) {
            int64_t wait = r.heap[0].at - now_ns();
            if (wait < 0)
                wait = 0;
            ts = (struct timespec){.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
        }
        int rc = ppoll(p, 3, tp, NULL);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            perror("udt_relay: ppoll");
            return 70;
        }
        for (int side = 0; side < 2; side++)
            if (p[side].revents & POLLIN)
                for (int j = 0; j < 16 && take_batch(&r, side == 0 ? FWD : BACK) == BATCH; j++)
                    release_due(&r, now_ns());
        if (p[2].revents & (POLLIN | POLLHUP)) {
            if (!read_commands(&r))
                break;
        }
    }
    print_stats(&r);
    return 0;
}
