/*
 * sendpath_bench.c - the sending thread's cost of each way a group of due datagrams can
 * leave: one send() a datagram, one sendmmsg() a socket (the worker's path when each
 * channel has its own socket), one sendmmsg() for a group on one socket, and one
 * io_uring_enter() for the whole group, on K sockets or on one.
 *
 * io_uring is reached through its raw system calls and <linux/io_uring.h>, so nothing
 * beyond the kernel's headers is needed; where the header is missing the io_uring paths
 * are not built, and where the kernel refuses a ring (ENOSYS, EPERM: the
 * io_uring_disabled sysctl, a seccomp filter) they are reported as not available.  No
 * SQPOLL: its kernel thread polls the ring on a CPU of its own, which a worker that
 * already owns its core cannot give, and whose cost the calling thread's clock would
 * not show.
 *
 * Loopback delivers each datagram to its receiver in the softirq the send raises, on
 * the sending thread and within its send; a kernel without IRQ time accounting
 * (CONFIG_IRQ_TIME_ACCOUNTING off) charges that delivery to the thread's CPU time, the
 * same for every path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#endif
#include "sendpath_bench.h"
#include "sock_cmsg.h"

#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#include <sys/syscall.h>
#if defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter) && \
    defined(__NR_io_uring_register)
#define HAVE_URING 1
#endif
#endif
#endif

#define MAX_K RTUDP_SENDPATH_MAX_K
#define PATHS RTUDP_SENDPATH_PATHS
#define MAX_SIZE 1472u
#define SLOT 2048u              /* receive slot: more than MAX_SIZE */
#define DRAIN_BATCH 64u         /* datagrams a recvmmsg while draining */
#define ERRQ_CTL 256u           /* control bytes an error-queue message */
#define RCVBUF_WANT (4 << 20)   /* each receiver's (and sender's error queue's) buffer */
#define SKB_OVERHEAD 1024u      /* what a queued datagram costs its buffer beyond payload */
#define WINDOW_MAX 1024u        /* datagrams a receiver holds between two drains at most */
#define SETTLE_NS 200000000LL   /* no new datagram for this long: the rest is lost */
#define NS 1000000000LL

_Static_assert(sizeof(((struct rtudp_sendpath_result *)0)->cpu_ns) ==
                   sizeof(int64_t) * RTUDP_SENDPATH_PATHS * RTUDP_SENDPATH_MAX_ROUNDS,
               "cpu_ns dimensions follow the constants");
_Static_assert(sizeof(((struct rtudp_sendpath_result *)0)->sent) ==
                   sizeof(uint64_t) * RTUDP_SENDPATH_PATHS,
               "per-path arrays follow RTUDP_SENDPATH_PATHS");

#ifdef HAVE_URING
struct uring {
    int fd;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len;
    struct io_uring_sqe *sqes;
    size_t sqes_len;
    _Atomic uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
    uint32_t *sq_array;
    struct io_uring_cqe *cqes;
    uint32_t sq_mask, cq_mask, sq_entries, cq_entries;
};
#endif

struct bench {
    const struct rtudp_sendpath_config *cfg;
    uint32_t ntx;              /* sending sockets, each with its receiver */
    int tx[MAX_K], rx[MAX_K];
    uint32_t next_key[MAX_K];  /* per sending socket: its next datagram's OPT_ID key */
    int stamps, key_cmsg;
    uint32_t window;           /* groups between two drains */
    uint8_t *payload;          /* k datagrams of size bytes */
    uint8_t *scratch;          /* DRAIN_BATCH receive slots */
    struct mmsghdr mm[MAX_K];  /* datagram i of a group, its control pointing at ctl[i] */
    struct iovec iov[MAX_K];
    union rtudp_cmsg_u32 ctl[MAX_K];
    int stopped[PATHS];        /* the -errno that stopped a path */
#ifdef HAVE_URING
    struct uring ring;
    int ring_open, files_registered;
#endif
};

/* ------------------------------------------------------------------ clocks */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void sleep_ms(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ sockets */

/* a large receive buffer: FORCE past rmem_max where permitted; the size it got */
static int64_t big_rcvbuf(int fd)
{
    int want = RCVBUF_WANT, got = 0;
    socklen_t l = sizeof got;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &l) != 0)
        return -errno;
    return got;
}

static int udp_socket(void)
{
    return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

/* a receiver bound on 127.0.0.1 and a sender connected to it; 0 or -errno */
static int open_pair(int *tx, int *rx, int64_t *rcvbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    *rx = udp_socket();
    if (*rx < 0)
        return -errno;
    *tx = udp_socket();
    if (*tx < 0)
        return -errno;
    int64_t r1 = big_rcvbuf(*rx), r2 = big_rcvbuf(*tx);
    if (r1 < 0 || r2 < 0)
        return (int)(r1 < 0 ? r1 : r2);
    *rcvbuf = r1 < r2 ? r1 : r2;
    if (bind(*rx, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(*rx, (struct sockaddr *)&a, &al) != 0 ||
        connect(*tx, (struct sockaddr *)&a, sizeof a) != 0)
        return -errno;
    return 0;
}

/* SO_TIMESTAMPING as the worker sets it (worker/netio.c): off first, so OPT_ID's key
 * counter starts at 0; 1 on, 0 when the kernel has no SO_TIMESTAMPING, or -errno */
static int worker_stamps(int fd)
{
    int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE |
                SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    int zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &zero, sizeof zero) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
        return errno == ENOPROTOOPT ? 0 : -errno;
    return 1;
}

/* ------------------------------------------------------------------ draining */

/* reads fd's waiting datagrams (or, errq, its error queue's messages); how many were
 * read (errq: how many carried a TX stamp) */
static uint64_t drain(struct bench *b, int fd, int errq)
{
    struct mmsghdr mm[DRAIN_BATCH];
    struct iovec iov[DRAIN_BATCH];
    union {
        char buf[ERRQ_CTL];
        struct cmsghdr align;
    } ctl[DRAIN_BATCH];
    uint64_t n = 0;
    for (;;) {
        memset(mm, 0, sizeof mm);
        for (unsigned i = 0; i < DRAIN_BATCH; i++) {
            iov[i].iov_base = b->scratch + (size_t)i * SLOT;
            iov[i].iov_len = SLOT;
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            if (errq) {
                mm[i].msg_hdr.msg_control = ctl[i].buf;
                mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
            }
        }
        int r = recvmmsg(fd, mm, DRAIN_BATCH, MSG_DONTWAIT | (errq ? MSG_ERRQUEUE : 0), NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return n;
        for (int i = 0; i < r && errq; i++) {
            /* CMSG_NXTHDR stops at msg_controllen, which the kernel set to what it filled;
             * the stamp comes in the kind (old or 64-bit time) SO_TIMESTAMPING asked for */
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING) {
                    n++;
                    break;
                }
        }
        if (!errq)
            n += (uint64_t)r;
        if ((unsigned)r < DRAIN_BATCH)
            return n;
    }
}

/* every receiver drained: datagrams read */
static uint64_t drain_receivers(struct bench *b)
{
    uint64_t n = 0;
    for (uint32_t s = 0; s < b->ntx; s++)
        n += drain(b, b->rx[s], 0);
    return n;
}

/* every sender's error queue drained: TX stamps read */
static uint64_t drain_stamps(struct bench *b)
{
    uint64_t n = 0;
    for (uint32_t s = 0; s < b->ntx && b->stamps; s++)
        n += drain(b, b->tx[s], 1);
    return n;
}

/* ------------------------------------------------------------------ the group */

static uint32_t sock_of(const struct bench *b, uint32_t i)
{
    return b->ntx == 1 ? 0 : i;
}

/* one msghdr a datagram, made once: a group only renews the keys */
static void build_messages(struct bench *b)
{
    const struct rtudp_sendpath_config *cfg = b->cfg;
    memset(b->mm, 0, sizeof b->mm);
    for (uint32_t i = 0; i < cfg->k; i++) {
        b->iov[i].iov_base = b->payload + (size_t)i * cfg->size;
        b->iov[i].iov_len = cfg->size;
        b->mm[i].msg_hdr.msg_iov = &b->iov[i];
        b->mm[i].msg_hdr.msg_iovlen = 1;
#ifdef SCM_TS_OPT_ID
        if (b->key_cmsg)
            rtudp_cmsg_u32_set(&b->mm[i].msg_hdr, &b->ctl[i], SCM_TS_OPT_ID, 0);
#endif
    }
}

/* each datagram of the group carries its socket's next key, as the worker's do */
static void set_keys(struct bench *b)
{
    if (!b->key_cmsg)
        return;
    for (uint32_t i = 0; i < b->cfg->k; i++) {
        uint32_t key = b->next_key[sock_of(b, i)]++;
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&b->mm[i].msg_hdr)), &key, sizeof key);
    }
}

/* (a) K x send(), or sendmsg() when the key rides along */
static int group_send(struct bench *b, uint64_t *sent, uint64_t *calls)
{
    for (uint32_t i = 0; i < b->cfg->k; i++) {
        int fd = b->tx[sock_of(b, i)];
        ssize_t r;
        do {
            ++*calls;
            r = b->key_cmsg ? sendmsg(fd, &b->mm[i].msg_hdr, MSG_DONTWAIT)
                            : send(fd, b->iov[i].iov_base, b->iov[i].iov_len, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        ++*sent;
    }
    return 0;
}

/* (b) K x sendmmsg() of one: what the worker does today, a socket a call */
static int group_sendmmsg1(struct bench *b, uint64_t *sent, uint64_t *calls)
{
    for (uint32_t i = 0; i < b->cfg->k; i++) {
        int r;
        do {
            ++*calls;
            r = sendmmsg(b->tx[sock_of(b, i)], &b->mm[i], 1, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return -errno;
        if (r != 1)
            return -EIO;
        ++*sent;
    }
    return 0;
}

/* one sendmmsg() of the K on their one socket (again for what a short count left) */
static int group_sendmmsgk(struct bench *b, uint64_t *sent, uint64_t *calls)
{
    uint32_t done = 0, k = b->cfg->k;
    while (done < k) {
        ++*calls;
        int r = sendmmsg(b->tx[0], b->mm + done, k - done, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;
        done += (uint32_t)r;
        *sent += (uint64_t)r;
    }
    return 0;
}

/* ------------------------------------------------------------------ io_uring */

#ifdef HAVE_URING
static int sys_uring_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_uring_enter(int fd, unsigned submit, unsigned complete, unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, fd, submit, complete, flags, NULL, 0);
}

static int sys_uring_register(int fd, unsigned op, const void *arg, unsigned n)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

/* a field at off of a mapping of len bytes: NULL unless it lies wholly inside */
static void *field(void *map, size_t len, uint32_t off, size_t size)
{
    if ((size_t)off > len || size > len - off)
        return NULL;
    return (char *)map + off;
}

static void uring_close(struct uring *r)
{
    if (r->sqes && r->sqes != MAP_FAILED)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_len);
    if (r->sq_map && r->sq_map != MAP_FAILED)
        munmap(r->sq_map, r->sq_len);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

/* io_uring_setup with the cheapest completion mode the kernel knows; fd or -errno */
static int uring_create(unsigned entries, struct io_uring_params *p)
{
    /* DEFER_TASKRUN (6.1) runs completion work only when the submitter asks for
     * events, as this loop always does; COOP_TASKRUN (5.19) spares the IPI */
    static const uint32_t tries[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int fd = -EINVAL;
    for (size_t t = 0; t < sizeof tries / sizeof tries[0] && fd == -EINVAL; t++) {
        memset(p, 0, sizeof *p);
        p->flags = tries[t];
        fd = sys_uring_setup(entries, p);
        if (fd < 0)
            fd = -errno;
    }
    return fd;
}

/* maps the rings of p (fd r->fd); 0 or -errno */
static int uring_map(struct uring *r, const struct io_uring_params *p)
{
    r->sq_len = p->sq_off.array + (size_t)p->sq_entries * sizeof(uint32_t);
    r->cq_len = p->cq_off.cqes + (size_t)p->cq_entries * sizeof(struct io_uring_cqe);
    int single = (p->features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single)
        r->sq_len = r->cq_len = r->sq_len > r->cq_len ? r->sq_len : r->cq_len;
    r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                     IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED)
        return -errno;
    r->cq_map = single ? r->sq_map
                       : mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                              r->fd, IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED)
        return -errno;
    r->sqes_len = (size_t)p->sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                   IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        return -errno;
    uint32_t *sq_mask = field(r->sq_map, r->sq_len, p->sq_off.ring_mask, sizeof(uint32_t));
    uint32_t *cq_mask = field(r->cq_map, r->cq_len, p->cq_off.ring_mask, sizeof(uint32_t));
    r->sq_head = field(r->sq_map, r->sq_len, p->sq_off.head, sizeof(uint32_t));
    r->sq_tail = field(r->sq_map, r->sq_len, p->sq_off.tail, sizeof(uint32_t));
    r->cq_head = field(r->cq_map, r->cq_len, p->cq_off.head, sizeof(uint32_t));
    r->cq_tail = field(r->cq_map, r->cq_len, p->cq_off.tail, sizeof(uint32_t));
    r->sq_array = field(r->sq_map, r->sq_len, p->sq_off.array,
                        (size_t)p->sq_entries * sizeof(uint32_t));
    r->cqes = field(r->cq_map, r->cq_len, p->cq_off.cqes,
                    (size_t)p->cq_entries * sizeof(struct io_uring_cqe));
    if (!sq_mask || !cq_mask || !r->sq_head || !r->sq_tail || !r->cq_head || !r->cq_tail ||
        !r->sq_array || !r->cqes)
        return -EPROTO;
    r->sq_mask = *sq_mask;
    r->cq_mask = *cq_mask;
    r->sq_entries = p->sq_entries;
    r->cq_entries = p->cq_entries;
    /* the masks index the arrays just checked: they must be entries - 1 */
    if (r->sq_mask != r->sq_entries - 1 || r->cq_mask != r->cq_entries - 1)
        return -EPROTO;
    return 0;
}

/* a ring of at least `entries` SQEs; 0, or -errno (r closed) */
static int uring_open(struct uring *r, unsigned entries, uint32_t *flags)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct io_uring_params p;
    int fd = uring_create(entries, &p);
    if (fd < 0)
        return fd;
    r->fd = fd;
    int rc = uring_map(r, &p);
    if (rc == 0 && r->sq_entries < entries)
        rc = -ENOSPC;
    if (rc != 0) {
        uring_close(r);
        return rc;
    }
    *flags = p.flags;
    return 0;
}

static void uring_teardown(struct bench *b)
{
    if (b->ring_open)
        uring_close(&b->ring);
    b->ring_open = 0;
}

/* SQE i of the group, at ring slot idx: SENDMSG of mm[i], or SEND of its bytes */
static void prep_sqe(struct bench *b, struct io_uring_sqe *sqe, uint32_t i, int path)
{
    uint32_t s = sock_of(b, i);
    memset(sqe, 0, sizeof *sqe);
    if (path == RTUDP_SENDPATH_URING_SEND) {
        sqe->opcode = IORING_OP_SEND;
        sqe->addr = (uint64_t)(uintptr_t)b->iov[i].iov_base;
        sqe->len = (uint32_t)b->iov[i].iov_len;
    } else {
        sqe->opcode = IORING_OP_SENDMSG;
        sqe->addr = (uint64_t)(uintptr_t)&b->mm[i].msg_hdr;
        sqe->len = 1;
    }
    if (path == RTUDP_SENDPATH_URING_FIXED) {
        sqe->fd = (int32_t)s;
        sqe->flags = IOSQE_FIXED_FILE;
    } else {
        sqe->fd = b->tx[s];
    }
    /* as the worker's sendmmsg: a full socket answers EAGAIN, nothing waits */
    sqe->msg_flags = MSG_DONTWAIT;
    sqe->user_data = i;
}

/* the CQEs waiting: how many were taken (at most `want`); *err = the first failure */
static uint32_t reap(struct uring *r, uint32_t want, uint64_t *sent, int *err)
{
    uint32_t head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(r->cq_tail, memory_order_acquire);
    uint32_t got = 0;
    for (; head != tail && got < want; head++, got++) {
        const struct io_uring_cqe *c = &r->cqes[head & r->cq_mask];
        if (c->res < 0) {
            if (!*err)
                *err = c->res;
        } else {
            ++*sent;
        }
    }
    atomic_store_explicit(r->cq_head, head, memory_order_release);
    return got;
}

/* (c) the K as K SQEs, submitted and waited for in one io_uring_enter */
static int group_uring(struct bench *b, int path, uint64_t *sent, uint64_t *calls)
{
    struct uring *r = &b->ring;
    uint32_t k = b->cfg->k;
    uint32_t tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(r->sq_head, memory_order_acquire);
    if (tail - head > r->sq_entries - k)
        return -EBUSY;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t idx = (tail + i) & r->sq_mask;
        prep_sqe(b, &r->sqes[idx], i, path);
        r->sq_array[idx] = idx;
    }
    atomic_store_explicit(r->sq_tail, tail + k, memory_order_release);
    /* the kernel consumes the SQEs before it waits: a signal can cut only the wait */
    ++*calls;
    int n = sys_uring_enter(r->fd, k, k, IORING_ENTER_GETEVENTS);
    if (n < 0 || (uint32_t)n != k) {
        /* SQEs left in the ring would go with another path's group: no more io_uring */
        int e = n < 0 ? -errno : -EIO;
        uring_teardown(b);
        return e;
    }
    int err = 0;
    uint32_t got = reap(r, k, sent, &err);
    while (got < k) {
        ++*calls;
        if (sys_uring_enter(r->fd, 0, k - got, IORING_ENTER_GETEVENTS) < 0 && errno != EINTR) {
            int e = -errno;
            uring_teardown(b);
            return e;
        }
        got += reap(r, k - got, sent, &err);
    }
    return err;
}

/* names of the setup flags uring_create tries, into out (size bytes, NUL-ended) */
static void name_flags(uint32_t flags, char *out, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
    };
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit))
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? "|" : "", names[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
    if (!used)
        snprintf(out, size, "none");
}

/* a ring for the paths that need one; sets uring_errno (0: it works), uring_flags */
static void uring_setup(struct bench *b, struct rtudp_sendpath_result *out)
{
    out->uring_built = 1;
    int rc = uring_open(&b->ring, RTUDP_SENDPATH_MAX_K, &out->uring_flags);
    if (rc < 0) {
        out->uring_errno = -rc;
        return;
    }
    name_flags(out->uring_flags, out->uring_mode, sizeof out->uring_mode);
    b->ring_open = 1;
    if (sys_uring_register(b->ring.fd, IORING_REGISTER_FILES, b->tx, b->ntx) == 0)
        b->files_registered = 1;
    else
        out->files_errno = errno;
}
#else
static void uring_setup(struct bench *b, struct rtudp_sendpath_result *out)
{
    (void)b;
    out->uring_built = 0;
    out->uring_errno = ENOSYS;
}

static void uring_teardown(struct bench *b)
{
    (void)b;
}
#endif

/* ------------------------------------------------------------------ rounds */

static int uring_path(int path)
{
    return path == RTUDP_SENDPATH_URING_SENDMSG || path == RTUDP_SENDPATH_URING_FIXED ||
           path == RTUDP_SENDPATH_URING_SEND;
}

/* can `path` run here: asked for, not stopped, and its ring there */
static int runnable(const struct bench *b, int path)
{
    if (!(b->cfg->paths & (1u << path)) || b->stopped[path])
        return 0;
#ifdef HAVE_URING
    if (uring_path(path))
        return b->ring_open && (path != RTUDP_SENDPATH_URING_FIXED || b->files_registered);
    return 1;
#else
    return !uring_path(path);
#endif
}

/* one group by `path`; 0 or -errno */
static int send_group(struct bench *b, int path, uint64_t *sent, uint64_t *calls)
{
    set_keys(b);
    switch (path) {
    case RTUDP_SENDPATH_SEND:
        return group_send(b, sent, calls);
    case RTUDP_SENDPATH_SENDMMSG1:
        return group_sendmmsg1(b, sent, calls);
    case RTUDP_SENDPATH_SENDMMSGK:
        return group_sendmmsgk(b, sent, calls);
#ifdef HAVE_URING
    case RTUDP_SENDPATH_URING_SENDMSG:
    case RTUDP_SENDPATH_URING_FIXED:
    case RTUDP_SENDPATH_URING_SEND:
        return group_uring(b, path, sent, calls);
#endif
    default:
        return -EINVAL;
    }
}

struct tally {
    int64_t cpu, wall;
    uint64_t sent, received, stamped, calls;
    int err;
};

/* waits until what was sent has all arrived (and been stamped), or nothing new came
 * for SETTLE_NS: the rest is lost */
static void settle(struct bench *b, struct tally *t)
{
    int64_t quiet_since = clock_ns(CLOCK_MONOTONIC);
    while (t->received < t->sent || (b->stamps && t->stamped < t->sent)) {
        uint64_t got = drain_receivers(b), st = drain_stamps(b);
        t->received += got;
        t->stamped += st;
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (got || st)
            quiet_since = now;
        else if (now - quiet_since > SETTLE_NS)
            return;
        else
            sleep_ms();
    }
}

/* one round of `path`: groups in timed windows, everything drained between them */
static struct tally run_round(struct bench *b, int path)
{
    struct tally t = {0};
    uint32_t groups = b->cfg->groups;
    for (uint32_t g = 0; g < groups && !t.err; ) {
        uint32_t w = groups - g < b->window ? groups - g : b->window;
        int64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), w0 = clock_ns(CLOCK_MONOTONIC);
        for (uint32_t i = 0; i < w && !t.err; i++)
            t.err = send_group(b, path, &t.sent, &t.calls);
        int64_t w1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        t.cpu += c1 - c0;
        t.wall += w1 - w0;
        t.received += drain_receivers(b);
        t.stamped += drain_stamps(b);
        g += w;
    }
    settle(b, &t);
    return t;
}

static void record(struct bench *b, int path, uint32_t round, const struct tally *t,
                   struct rtudp_sendpath_result *out)
{
    if (t->err) {
        b->stopped[path] = t->err;
        out->error[path] = t->err;
        return;
    }
    out->cpu_ns[path][round] = t->cpu;
    out->wall_ns[path][round] = t->wall;
    out->sent[path] += t->sent;
    out->received[path] += t->received;
    out->stamped[path] += t->stamped;
    out->calls[path] += t->calls;
    out->ran[path] = (int32_t)round + 1;
}

/* round 0 untimed, then the timed ones; each round starts one path later */
static void run_rounds(struct bench *b, struct rtudp_sendpath_result *out)
{
    int order[PATHS], n = 0;
    for (int p = 0; p < PATHS; p++)
        if (runnable(b, p))
            order[n++] = p;
    for (uint32_t round = 0; round <= b->cfg->rounds && n; round++) {
        for (int j = 0; j < n; j++) {
            int path = order[(j + (int)round) % n];
            if (!runnable(b, path))
                continue;
            struct tally t = run_round(b, path);
            if (round == 0 && !t.err)
                continue;
            record(b, path, round ? round - 1 : 0, &t, out);
        }
    }
    for (int p = 0; p < PATHS; p++)
        if (b->stopped[p] && (b->cfg->paths & (1u << p)))
            out->error[p] = b->stopped[p];
}

/* ------------------------------------------------------------------ set-up */

static int valid(const struct rtudp_sendpath_config *cfg)
{
    if (!cfg || cfg->k < 1 || cfg->k > MAX_K || (cfg->sockets != 1 && cfg->sockets != cfg->k) ||
        cfg->size < 16 || cfg->size > MAX_SIZE || cfg->groups < 1 || cfg->rounds < 1 ||
        cfg->rounds > RTUDP_SENDPATH_MAX_ROUNDS || (cfg->paths >> PATHS) != 0)
        return 0;
    /* one sendmmsg spans one socket; IORING_OP_SEND has no room for the key cmsg */
    if ((cfg->paths & (1u << RTUDP_SENDPATH_SENDMMSGK)) && cfg->sockets != 1)
        return 0;
    if ((cfg->paths & (1u << RTUDP_SENDPATH_URING_SEND)) && cfg->stamps)
        return 0;
    return 1;
}

/* the sockets, their stamps and the window; 0 or -errno */
static int open_sockets(struct bench *b, struct rtudp_sendpath_result *out)
{
    const struct rtudp_sendpath_config *cfg = b->cfg;
    int64_t rcvbuf = INT64_MAX;
    for (uint32_t s = 0; s < cfg->sockets; s++) {
        int64_t got = 0;
        int rc = open_pair(&b->tx[s], &b->rx[s], &got);
        b->ntx = s + 1;
        if (rc < 0)
            return rc;
        rcvbuf = got < rcvbuf ? got : rcvbuf;
        if (cfg->stamps) {
            rc = worker_stamps(b->tx[s]);
            if (rc < 0)
                return rc;
            b->stamps = s == 0 ? rc : b->stamps && rc;
        }
    }
    b->key_cmsg = b->stamps && rtudp_tskey_cmsg_works();
    out->stamps_on = b->stamps;
    out->key_cmsg = b->key_cmsg;
    out->rcvbuf = rcvbuf;
    /* each drain leaves every receiver (and error queue) room for a window */
    uint64_t per_rx = cfg->sockets == 1 ? cfg->k : 1;
    uint64_t fits = (uint64_t)rcvbuf / (cfg->size + SKB_OVERHEAD);
    fits = fits < WINDOW_MAX ? fits : WINDOW_MAX;
    b->window = fits / per_rx ? (uint32_t)(fits / per_rx) : 1;
    out->window = b->window;
    return 0;
}

static void close_sockets(struct bench *b)
{
    for (uint32_t s = 0; s < b->ntx; s++) {
        if (b->tx[s] >= 0)
            close(b->tx[s]);
        if (b->rx[s] >= 0)
            close(b->rx[s]);
    }
    b->ntx = 0;
}

static struct bench *bench_new(const struct rtudp_sendpath_config *cfg)
{
    struct bench *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->cfg = cfg;
    for (int s = 0; s < MAX_K; s++)
        b->tx[s] = b->rx[s] = -1;
    b->payload = malloc((size_t)cfg->k * cfg->size);
    b->scratch = malloc((size_t)DRAIN_BATCH * SLOT);
    if (!b->payload || !b->scratch) {
        free(b->payload);
        free(b->scratch);
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)cfg->k * cfg->size; i++)
        b->payload[i] = (uint8_t)i;
#ifdef HAVE_URING
    b->ring.fd = -1;
#endif
    return b;
}

static void bench_free(struct bench *b)
{
    uring_teardown(b);
    close_sockets(b);
    free(b->payload);
    free(b->scratch);
    free(b);
}

int rtudp_sendpath_measure(const struct rtudp_sendpath_config *cfg,
                           struct rtudp_sendpath_result *out)
{
    if (!out || !valid(cfg))
        return -EINVAL;
    memset(out, 0, sizeof *out);
    struct bench *b = bench_new(cfg);
    if (!b)
        return -ENOMEM;
    int rc = open_sockets(b, out);
    if (rc == 0) {
        build_messages(b);
        uring_setup(b, out);
        run_rounds(b, out);
    }
    bench_free(b);
    return rc;
}
