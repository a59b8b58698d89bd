/* direct_recv.c - a reader's wait made on the channel socket itself (direct_recv.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2 */
#endif
#include "direct_recv.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "direct_send.h"
#include "readers.h"
#include "rx_publish.h"
#include "shm_access.h"
#include "worker/netio.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* this process's pid, read once and again in a forked child: a take reads it each time,
 * and getpid() is a system call */
static atomic_uint cached_pid;
static pthread_once_t fork_watch = PTHREAD_ONCE_INIT;

static void forget_pid(void)
{
    atomic_store_explicit(&cached_pid, 0u, memory_order_relaxed);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

static uint32_t this_pid(void)
{
    uint32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (!pid) {
        pthread_once(&fork_watch, watch_forks);
        pid = (uint32_t)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return pid;
}

static atomic_int stop_after_receive;

void rtudp_drx_stop_after_receive(int on)
{
    atomic_store_explicit(&stop_after_receive, on != 0, memory_order_relaxed);
}

void rtudp_drx_reader_joined(struct rtudp_channel_block *b)
{
    /* pairs with read_socket's fence: either that reader sees our slot before it reads
     * again, or we see it READING here and wait for what it read to be published */
    atomic_thread_fence(memory_order_seq_cst);
    for (int64_t waited = 0; waited < RTUDP_DRX_STALE_NS; waited += RTUDP_DRX_JOIN_POLL_NS) {
        uint32_t holder = load_relaxed(&b->direct_rx.holder_pid);
        /* a thread of ours reading: what it read dies only with us */
        if (load_acquire(&b->direct_rx.state) != RTUDP_DRX_READING || holder == this_pid() ||
            rtudp_pid_gone(holder))
            return;
        struct timespec ts = {0, RTUDP_DRX_JOIN_POLL_NS};
        nanosleep(&ts, NULL);
    }
}

void rtudp_drx_init(struct rtudp_drx_reader *r)
{
    memset(r, 0, sizeof *r);
    r->fd = r->epfd = -1;
}

int rtudp_drx_open(struct rtudp_drx_reader *r, int pid, int their_fd, int family,
                   uint16_t local_port, struct rtudp_channel_block *block,
                   const struct rtudp_bcast *ring, int64_t spin_ns, struct rtudp_check *why)
{
    rtudp_drx_init(r);
    if (!block || !ring)
        return rtudp_check_set(why, RTUDP_EINVAL, "no channel block or RX ring");
    uint32_t cap = rtudp_rx_cap_for(ring, load_relaxed(&block->max_datagram));
    if (cap == 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "the RX ring holds no datagram");
    int fd;
    int rc = rtudp_channel_socket_dup(pid, their_fd, family, local_port, false, &fd, why);
    if (rc != RTUDP_OK)
        return rc;
    /* with UDP_GRO a receive must take the whole 64 KiB: a shorter buffer would cut
     * whole datagrams off a coalesced one */
    int gro = 0;
    socklen_t gl = sizeof gro;
    if (getsockopt(fd, SOL_UDP, UDP_GRO, &gro, &gl) != 0)
        gro = 0;
    uint32_t recv_cap = gro ? RTUDP_RX_RECV_MAX : cap;
    r->buf = malloc(RTUDP_DRX_BATCH * RTUDP_RX_SLOT(recv_cap));
    r->seg_buf = gro ? malloc(RTUDP_RX_SEG_BUF) : NULL;
    if (!r->buf || (gro && !r->seg_buf)) {
        free(r->buf);
        free(r->seg_buf);
        close(fd);
        rtudp_drx_init(r);
        return rtudp_check_set(why, RTUDP_ESYS, "no memory for %d receive slots of %u bytes",
                               RTUDP_DRX_BATCH, recv_cap);
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        rc = rtudp_check_set(why, RTUDP_ESYS, "epoll for the socket: %s", strerror(errno));
        if (epfd >= 0)
            close(epfd);
        free(r->buf);
        free(r->seg_buf);
        close(fd);
        rtudp_drx_init(r);
        return rc;
    }
    r->epfd = epfd;
    r->spin_ns = spin_ns > 0 ? spin_ns : 0;
    r->need = RTUDP_DRX_SPIN_HITS;
    r->block = block;
    r->fd = fd;
    r->pid = this_pid();
    r->cap = cap;
    r->recv_cap = recv_cap;
    return RTUDP_OK;
}

static bool cas(struct rtudp_drx_reader *r, uint32_t from, uint32_t to)
{
    return atomic_compare_exchange_strong_explicit(SHARED(&r->block->direct_rx.state), &from, to,
                                                   memory_order_acq_rel, memory_order_acquire);
}

void rtudp_drx_close(struct rtudp_drx_reader *r)
{
    if (!r->block)
        return; /* off (all zero: fd 0 is not ours) */
    if (load_relaxed(&r->block->direct_rx.holder_pid) == r->pid)
        cas(r, RTUDP_DRX_LEASE, RTUDP_DRX_FREE);
    close(r->epfd);
    close(r->fd);
    free(r->buf);
    free(r->seg_buf);
    rtudp_drx_init(r);
}

bool rtudp_drx_on(struct rtudp_drx_reader *r)
{
    if (r->block && load_relaxed(&r->block->direct.state) == RTUDP_DIRECT_REVOKED)
        rtudp_drx_close(r);
    return r->block != NULL;
}

/* a record waits for rd (or its cursor is off the ring: the read says how) */
static bool ring_has(const struct rtudp_bcast *ring, const struct rtudp_bcast_reader *rd)
{
    return load_acquire(&ring->ring->tail) != rd->cursor;
}

/* hold the socket until now + for_ns */
static void renew(struct rtudp_drx_reader *r, int64_t now, int64_t for_ns)
{
    store_relaxed(&r->block->direct_rx.lease_until_ns, now + for_ns);
}

/*
 * Whether a process other than ours is attached as a reader (a live pid in a reader
 * slot).  Datagrams a reader has taken from the socket live in its own memory until
 * they are published, and die with it: so a reader reads the socket only while no
 * other process reads the channel, and where several do, the worker reads it.  A dead
 * reader's slot is emptied on the way (nobody else would: it cannot release it).
 */
static bool another_reader(const struct rtudp_drx_reader *r)
{
    for (int i = 0; i < RTUDP_READER_SLOTS; i++) {
        uint32_t pid = load_acquire(&r->block->reader_pid[i]);
        if (pid == 0 || pid == r->pid)
            continue;
        /* kill(pid, 0) only: it runs at every wait of a reader beside others, and a
         * zombie it takes for alive only leaves the reading to the worker a while;
         * a word above any pid is nobody's */
        if (pid <= INT32_MAX && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            return true;
        rtudp_pid_take(&r->block->reader_pid[i], pid, 0);
    }
    return false;
}

/* FREE, or anyone's lease -> WAIT, ours */
static bool take(struct rtudp_drx_reader *r, int64_t now)
{
    uint32_t state = load_acquire(&r->block->direct_rx.state);
    if (state != RTUDP_DRX_FREE && state != RTUDP_DRX_LEASE)
        return false;
    r->pid = this_pid(); /* a handle a forked child goes on using is the child's */
    if (another_reader(r)) {
        /* our own lease from before that reader came: the worker's at once */
        if (state == RTUDP_DRX_LEASE && load_relaxed(&r->block->direct_rx.holder_pid) == r->pid)
            cas(r, state, RTUDP_DRX_FREE);
        return false;
    }
    if (!cas(r, state, RTUDP_DRX_WAIT))
        return false;
    store_relaxed(&r->block->direct_rx.holder_pid, r->pid);
    renew(r, now, RTUDP_DRX_STALE_NS);
    if (state == RTUDP_DRX_FREE)
        bump(&r->block->direct_rx.takes, 1);
    return true;
}

struct publish_to {
    struct rtudp_channel_block *block;
    struct rtudp_bcast *ring;
};

static void publish_sink(void *ctx, struct rtudp_rx_pkt *run, int k)
{
    struct publish_to *to = ctx;
    rtudp_rx_publish(to->block, to->ring, run, k);
}

/* one receive of up to RTUDP_DRX_BATCH datagrams, published: how many, 0 when none
 * waited (or an error the worker would have counted too) */
static int read_batch(struct rtudp_drx_reader *r, struct rtudp_bcast *ring)
{
    struct rtudp_rx_pkt pkts[RTUDP_DRX_BATCH];
    for (unsigned i = 0; i < RTUDP_DRX_BATCH; i++) {
        pkts[i].buf = r->buf + i * RTUDP_RX_SLOT(r->recv_cap) + RTUDP_RX_META_ROOM;
        pkts[i].cap = r->recv_cap;
    }
    int n;
    do {
        n = rtudp_net_recv_batch(r->fd, pkts, RTUDP_DRX_BATCH);
        if (n < 0)
            bump(&r->block->rx_errors, 1); /* as the worker counts them */
        /* an ICMP error reported on a connected socket: data may still wait */
    } while (n < 0 && errno == ECONNREFUSED);
    if (n <= 0)
        return 0;
    if (atomic_load_explicit(&stop_after_receive, memory_order_relaxed))
        raise(SIGSTOP); /* tests: stopped (and killed) with datagrams not yet published */
    uint64_t before = load_relaxed(&r->block->rx_packets);
    struct publish_to to = {r->block, ring};
    rtudp_rx_in_order(r->block, pkts, n, r->cap, r->seg_buf, publish_sink, &to);
    bump(&r->block->direct_rx.packets, load_relaxed(&r->block->rx_packets) - before);
    return n;
}

/*
 * Read the socket while we wait (WAIT -> READING -> WAIT) until it has nothing more,
 * or RTUDP_DRX_ROUNDS receives: nothing is left behind under our lease.  The
 * datagrams read, 0 when none waited, -1 when the token is no longer ours (the worker
 * took a hold we had not renewed in time).
 */
static int read_socket(struct rtudp_drx_reader *r, struct rtudp_bcast *ring)
{
    if (!cas(r, RTUDP_DRX_WAIT, RTUDP_DRX_READING))
        return -1;
    /* a reader that attached before this look is seen here; one that attaches after it
     * waits until we are no longer READING (rtudp_drx_reader_joined), so what this
     * read takes is published before its cursor */
    atomic_thread_fence(memory_order_seq_cst);
    if (another_reader(r)) {
        store_release(&r->block->direct_rx.state, RTUDP_DRX_FREE); /* the worker reads */
        return -1;
    }
    int got = 0, n = RTUDP_DRX_BATCH;
    for (int round = 0; round < RTUDP_DRX_ROUNDS && n == RTUDP_DRX_BATCH; round++)
        got += n = read_batch(r, ring);
    store_release(&r->block->direct_rx.state, RTUDP_DRX_WAIT);
    return got;
}

/* whether we hold the socket between calls */
static bool our_lease(const struct rtudp_drx_reader *r)
{
    return load_acquire(&r->block->direct_rx.state) == RTUDP_DRX_LEASE &&
           load_relaxed(&r->block->direct_rx.holder_pid) == r->pid;
}

/*
 * Sleep until the socket is readable, a signal, or until (absolute): on our own epoll
 * set, where the socket stays registered, so a wait adds and removes no wait-queue
 * entry as poll() does each time.  (A blocking receive cannot wait here: the socket's
 * file is non-blocking for everyone who shares it.)
 */
static int sleep_on_socket(struct rtudp_drx_reader *r, int64_t now, int64_t until)
{
    struct epoll_event ev;
    int64_t d = until - now;
    struct timespec ts = {d / 1000000000, d % 1000000000};
    if (rtudp_before_sleep)
        rtudp_before_sleep();
    int rc = epoll_pwait2(r->epfd, &ev, 1, &ts, NULL);
    if (rc < 0 && errno == EINTR)
        return RTUDP_EINTR;
    return rc < 0 ? RTUDP_ESYS : RTUDP_OK;
}

/*
 * Whether the next wait spins: after RTUDP_DRX_SPIN_HITS waits in a row that a spin of
 * spin_ns would have caught (the datagram came within it).  A spin that caught nothing
 * doubles that count (up to RTUDP_DRX_SPIN_HITS_MAX), so where spinning only delays
 * the peer that is to answer (both on one CPU) it stays rare; a spin that caught its
 * datagram sets it back.
 */
static void learn_spin(struct rtudp_drx_reader *r, int64_t waited, int64_t spun)
{
    if (waited <= r->spin_ns) {
        if (r->hits < UINT32_MAX)
            r->hits++;
        if (spun)
            r->need = RTUDP_DRX_SPIN_HITS;
    } else {
        r->hits = 0;
        if (spun && r->need < RTUDP_DRX_SPIN_HITS_MAX)
            r->need *= 2;
    }
}

int rtudp_drx_wait(struct rtudp_drx_reader *r, struct rtudp_bcast *ring,
                   const struct rtudp_bcast_reader *rd, int64_t deadline_ns)
{
    if (!rtudp_drx_on(r) || !rtudp_drx_terms(r->block))
        return RTUDP_EMPTY;
    /* a look without a wait saves no wake-up: the socket is taken only to read what
     * came under our own lease */
    if (deadline_ns == 0 && !our_lease(r))
        return RTUDP_EMPTY;
    int64_t now = rtudp_now_ns();
    if (!take(r, now))
        return RTUDP_EMPTY;
    int64_t start = now, spun = r->hits >= r->need ? rtudp_wait_spin_ns(r->spin_ns) : 0;
    int64_t spin_end = now + spun;
    int rc;
    /* without a spin the first look is the sleep itself: the epoll set reports at once
     * what waits already, and a read before it finds nothing when the caller has just
     * sent the request this waits to be answered */
    bool read_now = spun || deadline_ns <= now;
    for (;;) {
        /* what the worker published before we took the socket comes first */
        if (ring_has(ring, rd)) {
            rc = RTUDP_OK;
            break;
        }
        /* a tap, an impairment, a pause since: the worker reads again */
        if (!rtudp_drx_terms(r->block)) {
            cas(r, RTUDP_DRX_WAIT, RTUDP_DRX_FREE);
            return RTUDP_EMPTY;
        }
        int got = read_now ? read_socket(r, ring) : 0;
        read_now = true;
        if (got < 0)
            return RTUDP_EMPTY;
        if (got > 0) {
            rc = RTUDP_OK;
            break;
        }
        now = rtudp_now_ns();
        if (now >= deadline_ns) {
            rc = RTUDP_ETIMEDOUT;
            break;
        }
        if (now < spin_end)
            continue;
        /* in slices, each renewing the hold: a reader that stops renewing it (a
         * stopped process) loses the socket to the worker */
        renew(r, now, RTUDP_DRX_STALE_NS);
        int64_t slice_end = now + RTUDP_DRX_SLICE_NS;
        rc = sleep_on_socket(r, now, deadline_ns < slice_end ? deadline_ns : slice_end);
        if (rc == RTUDP_ESYS) { /* cannot happen on a socket we hold; the worker reads */
            cas(r, RTUDP_DRX_WAIT, RTUDP_DRX_FREE);
            return RTUDP_EMPTY;
        }
        if (rc != RTUDP_OK)
            break;
    }
    now = rtudp_now_ns();
    if (r->spin_ns > 0 && rc != RTUDP_EINTR)
        learn_spin(r, rc == RTUDP_OK ? now - start : INT64_MAX, spun);
    /* kept between calls: the reply to what the caller sends next comes to us too */
    renew(r, now, RTUDP_DRX_LEASE_NS);
    cas(r, RTUDP_DRX_WAIT, RTUDP_DRX_LEASE);
    return rc;
}
