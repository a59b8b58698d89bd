/* The C peers of `rtudp bench scale` (tools/bench/scale_peer.py builds this at run time).
 *
 *   scale_peer observe OUT
 *       A plain UDP socket on 127.0.0.1 reading kernel arrival stamps (SO_TIMESTAMPNS).
 *       Prints "port P", then writes one record a datagram to OUT (struct record:
 *       source port, length, the first 4 bytes, CLOCK_REALTIME stamp) until stdin
 *       closes; then reads what is left, prints "done received=R unstamped=U".
 *   scale_peer send GAP_NS COUNT START_NS SIZE FORMAT
 *       N streams read from stdin ("HOST PORT" lines, then "end"), a connected socket
 *       each; stream i's packet k is due at START_NS + k * GAP_NS + i * GAP_NS / N
 *       (CLOCK_MONOTONIC; START_NS 0: 50 ms after setup). One thread, no timer slack:
 *       clock_nanosleep to each due time (none when it has passed), then send.
 *       FORMAT "rtp": a 12-byte RTP header (PT 0, seq k, ts k * 160, SSRC i + 1), then
 *       0xff; "netflux": sequence byte k, feedback 0, then zeros. Prints "ready", and
 *       at the end "done sent=S errors=E cpu_ns=C late_max_ns=L".
 *   scale_peer recv N
 *       N sockets on 127.0.0.1 read through one epoll; prints "ports P1 P2 ...", counts
 *       datagrams until stdin closes; prints "done received=R cpu_ns=C".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SIZE 2048
#define MAX_STREAMS 65536

struct record {
    uint16_t port;
    uint16_t len;
    uint8_t head[4];
    int64_t stamp_ns;
};

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
           + ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int die(const char *what)
{
    fprintf(stderr, "scale_peer: %s: %s\n", what, strerror(errno));
    return 1;
}

static int bound_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0
        || getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int stdin_closed(int timeout_ms)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    char buf[256];
    return read(0, buf, sizeof buf) <= 0;
}

/* ------------------------------------------------------------------ observe */

static long take_batch(int fd, FILE *out, long *unstamped, int flags)
{
    static char data[BATCH][MAX_SIZE];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = data[i], .iov_len = MAX_SIZE};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                          .msg_iov = &iov[i], .msg_iovlen = 1,
                                          .msg_control = ctrl[i],
                                          .msg_controllen = sizeof ctrl[i]};
    }
    int n = recvmmsg(fd, msgs, BATCH, flags, NULL);
    if (n <= 0)
        return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR ? -1 : 0;
    for (int i = 0; i < n; i++) {
        struct record r = {.port = ntohs(from[i].sin_port), .len = (uint16_t)msgs[i].msg_len,
                           .stamp_ns = -1};
        memcpy(r.head, data[i], msgs[i].msg_len < 4 ? msgs[i].msg_len : 4);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
             c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS
                && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                r.stamp_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        }
        if (r.stamp_ns < 0)
            (*unstamped)++;
        fwrite(&r, sizeof r, 1, out);
    }
    return n;
}

static int observe(const char *path)
{
    FILE *out = fopen(path, "wb");
    if (out == NULL)
        return die(path);
    uint16_t port;
    int fd = bound_socket(&port);
    if (fd < 0)
        return die("socket");
    int on = 1, buf = 256 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
        return die("SO_TIMESTAMPNS");
    printf("port %u\n", port);
    fflush(stdout);
    long received = 0, unstamped = 0;
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            return die("poll");
        if (p[0].revents & POLLIN) {
            long n;
            while ((n = take_batch(fd, out, &unstamped, MSG_DONTWAIT)) > 0)
                received += n;
            if (n < 0)
                return die("recvmmsg");
        }
        if (p[1].revents & (POLLIN | POLLHUP) && stdin_closed(0))
            break;
    }
    long n;
    while ((n = take_batch(fd, out, &unstamped, MSG_DONTWAIT)) > 0)
        received += n;
    if (fclose(out) != 0)
        return die(path);
    printf("done received=%ld unstamped=%ld\n", received, unstamped);
    return 0;
}

/* ------------------------------------------------------------------ send */

static void fill(unsigned char *pkt, size_t size, const char *format, long i, long k)
{
    if (format[0] == 'r') {
        uint16_t seq = htons((uint16_t)k);
        uint32_t ts = htonl((uint32_t)(k * 160)), ssrc = htonl((uint32_t)(i + 1));
        pkt[0] = 0x80;
        pkt[1] = 0;
        memcpy(pkt + 2, &seq, 2);
        memcpy(pkt + 4, &ts, 4);
        memcpy(pkt + 8, &ssrc, 4);
        memset(pkt + 12, 0xff, size - 12);
    } else {
        memset(pkt, 0, size);
        pkt[0] = (unsigned char)(k & 0xff);
    }
}

static int send_streams(int argc, char **argv)
{
    if (argc != 7 && argc != 8)
        return fprintf(stderr, "usage: scale_peer send GAP_NS COUNT START_NS SIZE FORMAT "
                               "[TICK_NS]\n"), 2;
    int64_t gap = atoll(argv[2]), start = atoll(argv[4]);
    /* TICK_NS > 0: wake on a grid of that step and send what is due by then, as an
     * event loop with a millisecond timeout does (asyncio): the CPU of that schedule */
    int64_t tick = argc == 8 ? atoll(argv[7]) : 0;
    long count = atol(argv[3]);
    size_t size = (size_t)atol(argv[5]);
    const char *format = argv[6];
    if (gap <= 0 || count <= 0 || start < 0 || size < 12 || size > MAX_SIZE || tick < 0
        || (strcmp(format, "rtp") != 0 && strcmp(format, "netflux") != 0))
        return fprintf(stderr, "scale_peer send: bad arguments\n"), 2;
    static int fds[MAX_STREAMS];
    long n = 0;
    char line[128], host[64];
    unsigned port;
    while (fgets(line, sizeof line, stdin) != NULL && strncmp(line, "end", 3) != 0) {
        if (n == MAX_STREAMS || sscanf(line, "%63s %u", host, &port) != 2 || port > 65535)
            return fprintf(stderr, "scale_peer send: bad stream line %s", line), 2;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
            return fprintf(stderr, "scale_peer send: bad host %s\n", host), 2;
        fds[n] = socket(AF_INET, SOCK_DGRAM, 0);
        if (fds[n] < 0 || connect(fds[n], (struct sockaddr *)&a, sizeof a) < 0)
            return die("socket");
        n++;
    }
    if (n == 0)
        return fprintf(stderr, "scale_peer send: no streams\n"), 2;
    unsigned char pkt[MAX_SIZE];
    /* a sleep of a SCHED_OTHER thread ends up to its timer slack (50 us) late, and one
     * to a time already past still costs a trip through the scheduler: as a real-time
     * sender, no slack, and no sleep when the packet is due already */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (start <= 0) /* 0: 50 ms after the sockets are set up */
        start = now_ns(CLOCK_MONOTONIC) + 50000000LL;
    printf("ready\n");
    fflush(stdout);
    int64_t cpu0 = cpu_ns(), late_max = 0;
    long sent = 0, errors = 0;
    /* every stream has the same gap: the due times go round the streams in order */
    for (long k = 0; k < count; k++) {
        for (long i = 0; i < n; i++) {
            int64_t due = start + k * gap + i * gap / n;
            int64_t wake = tick ? start + (due - start + tick - 1) / tick * tick : due;
            struct timespec ts = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL};
            while (now_ns(CLOCK_MONOTONIC) < due
                   && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
            fill(pkt, size, format, i, k);
            if (send(fds[i], pkt, size, 0) == (ssize_t)size)
                sent++;
            else
                errors++;
            int64_t late = now_ns(CLOCK_MONOTONIC) - due;
            if (late > late_max)
                late_max = late;
        }
    }
    printf("done sent=%ld errors=%ld cpu_ns=%lld late_max_ns=%lld\n", sent, errors,
           (long long)(cpu_ns() - cpu0), (long long)late_max);
    return 0;
}

/* ------------------------------------------------------------------ recv */

static int recv_streams(int argc, char **argv)
{
    long n = argc == 3 ? atol(argv[2]) : 0;
    if (n <= 0 || n > MAX_STREAMS)
        return fprintf(stderr, "usage: scale_peer recv N (1..%d)\n", MAX_STREAMS), 2;
    int ep = epoll_create1(0);
    if (ep < 0)
        return die("epoll_create1");
    printf("ports");
    for (long i = 0; i < n; i++) {
        uint16_t port;
        int fd = bound_socket(&port);
        int buf = 1 << 20;
        if (fd < 0)
            return die("socket");
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            return die("epoll_ctl");
        printf(" %u", port);
    }
    printf("\n");
    fflush(stdout);
    struct epoll_event ev0 = {.events = EPOLLIN, .data.fd = 0};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev0) < 0)
        return die("epoll_ctl stdin");
    int64_t cpu0 = cpu_ns();
    long received = 0;
    static struct epoll_event evs[256];
    char buf[MAX_SIZE];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, 100);
        if (k < 0 && errno != EINTR)
            return die("epoll_wait");
        for (int j = 0; j < k; j++) {
            if (evs[j].data.fd == 0) {
                if (stdin_closed(0))
                    goto done;
                continue;
            }
            while (recv(evs[j].data.fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
                received++;
        }
    }
done:
    printf("done received=%ld cpu_ns=%lld\n", received, (long long)(cpu_ns() - cpu0));
    return 0;
}

int main(int argc, char **argv)
{
    raise_nofile();
    if (argc == 3 && strcmp(argv[1], "observe") == 0)
        return observe(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return send_streams(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "recv") == 0)
        return recv_streams(argc, argv);
    fprintf(stderr, "usage: scale_peer observe OUT | send ... | recv N\n");
    return 2;
}
