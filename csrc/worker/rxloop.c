/*
 * rxloop.c - the RX thread: wait on the receiving channels' sockets, read
 * datagrams in batches and publish each as one RX broadcast record (struct
 * rtudp_rx_meta, then the datagram).
 *
 * Sockets are registered EPOLLIN | EPOLLET: a socket that also sends has TX stamps
 * queued on its error queue, which the TX thread drains; level-triggered, that
 * queue would keep reporting EPOLLERR and spin this thread.  Edge-triggered, a
 * socket is read until the kernel has nothing more (recvmmsg returned fewer than
 * asked), at most RX_ROUNDS batches per turn so one flooded channel cannot starve
 * the others; a channel left with data stays `pending` and is read next turn
 * without waiting.
 *
 * Wake-ups are coalesced while datagrams come faster than this thread wakes
 * (rx_coalesce), and gathered for up to RTUDP_RX_GATHER_NS while only channels that
 * may wait receive (rx_gather).
 *
 * Channels arrive and leave through one request at a time (mutex + condition),
 * announced on an eventfd in the same epoll set; the TX thread's add/remove
 * returns only after this thread has applied it, so the TX thread never frees a
 * channel this thread still reads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2 */
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <limits.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>

#include "thread.h"
#include "worker.h"

#define RX_BATCH 32                 /* datagrams per recvmmsg */
#define RX_ROUNDS 16                /* batches per channel per turn */
#define RX_EVENTS 64
_Static_assert(RX_EVENTS == sizeof(((struct rtudp_rx *)0)->lost) / sizeof(uint64_t), "lost[]");
#define RX_TIMERS_MAX 256           /* due timers taken in one turn at most */
#define RX_PAUSE_NS 100000000LL     /* after a failed epoll wait: never spin on it */
#define RX_CAPPED_SLEEP_NS 50000L   /* past the RT cap: sleeps this long (rx_keep_under_cap) */
#define RX_CPU_READ_NS 1000000LL
#define RX_STACK (512u << 10)       /* recvmmsg's arrays are on the stack (~60 KiB) */
#define RX_SLOT RTUDP_RX_SLOT(RTUDP_RX_RECV_MAX)
#define SEG_MAX RTUDP_RX_SEG_MAX
#define SEG_BUF RTUDP_RX_SEG_BUF

enum { RX_ADD = 1, RX_REMOVE = 2 };

struct rtudp_rx_req {
    int op;
    struct rtudp_rx_chan *ch;
    int done;
    int rc;
    int err;
};

/* the channel an RX view belongs to (it is embedded in it) */
static struct rtudp_chan *chan_of(struct rtudp_rx_chan *c)
{
    return (struct rtudp_chan *)((uint8_t *)c - offsetof(struct rtudp_chan, rx));
}

/* c may have data: in the pending list, read this turn or the next (the list holds
 * each channel once; one found drained is dropped from it at the turn's end) */
static void set_pending(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    c->pending = 1;
    if (!c->in_pend) {
        c->in_pend = 1;
        rx->pend[rx->n_pend++] = c;
    }
}

/* what an epoll event of c's socket carries: its table slot + 1 (0: the eventfd), so
 * an event that outlives the channel names a slot, never freed memory */
static uint64_t event_key(struct rtudp_rx_chan *c)
{
    return (uint64_t)chan_of(c)->slot + 1;
}

/* the channel an event names pending (none, if it left the table meanwhile) */
static void pending_by_key(struct rtudp_rx *rx, uint64_t key)
{
    if (key >= 1 && key <= RTUDP_MAX_CHANNELS && rx->chans[key - 1])
        set_pending(rx, rx->chans[key - 1]);
}

/* c's next time in rx->timers: its kind's timer, and its held datagrams' release or,
 * while a reader holds its socket, the next look at that reader.  A channel that
 * gathers has its kind's timer run at the next multiple of RTUDP_RX_GATHER_NS: late
 * by no more than its reads may be, and together with the other gathering channels'
 * timers, so that a thousand streams' releases take one wake-up a gather, not one
 * each (rx_gather) */
static void rekey(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    int64_t held = c->reader_holds ? c->reader_check_ns : rtudp_holdq_next_due(&c->hold);
    int64_t timer = c->timer_ns;
    if (c->may_gather && rx->coalesce_ns > 0)
        timer = rtudp_rx_gather_grid(timer);
    int64_t at = timer < held ? timer : held;
    rtudp_chanheap_set(&rx->timers, &c->timer_node, at == RTUDP_PROTO_NEVER ? RTUDP_CHANHEAP_NONE : at);
}

/* the kind takes pkts[0..n) (n <= SEG_MAX) as the impairment leaves them (its own
 * frame: the unimpaired path's stack stays as it was) */
static __attribute__((noinline)) void to_kind_impaired(struct rtudp_chan *ch,
                                                       struct rtudp_rx_pkt *pkts, int n)
{
    struct rtudp_rx_pkt out[2 * SEG_MAX]; /* each one twice at most (duplicated) */
    int m = rtudp_impair_rx(&ch->rx, pkts, n, out, (int)(2 * SEG_MAX), rtudp_now_ns());
    if (m > 0)
        ch->proto->rx_batch(ch, out, m);
}

/* the kind takes pkts[0..n) (n <= SEG_MAX), through the channel's impairment if any; a
 * tap, while one is attached, a copy of them as they came from the socket */
static void to_kind(struct rtudp_chan *ch, struct rtudp_rx_pkt *pkts, int n)
{
    rtudp_tap_rx(&ch->rx.tap, pkts, n);
    if (rtudp_impair_refresh(&ch->rx.impair, &ch->rx.block->impair, RTUDP_IMPAIR_RX))
        to_kind_impaired(ch, pkts, n);
    else
        ch->proto->rx_batch(ch, pkts, n);
}

/* The datagrams the impairment held that are due: to the kind as if they had just
 * come (their kernel RX stamps kept, so readers see the hold in rx_delay), in due
 * order, SEG_MAX at a time.  A popped datagram's bytes stay where they are until the
 * next put, which only a drain does, after this. */
static __attribute__((noinline)) void release_held(struct rtudp_rx_chan *c, int64_t now)
{
    struct rtudp_chan *ch = chan_of(c);
    struct rtudp_rx_pkt pkts[SEG_MAX];
    struct rtudp_hold_item it;
    for (;;) {
        int k = 0;
        while (k < (int)SEG_MAX && rtudp_holdq_peek_due(&c->hold, now, &it)) {
            struct rtudp_rx_pkt *p = &pkts[k++];
            memcpy(p, it.meta, sizeof *p); /* put as sizeof *p: impair_apply.c */
            p->buf = it.data;
            p->cap = p->len = it.len;
            rtudp_holdq_pop(&c->hold);
        }
        if (k && ch->proto->rx_batch)
            ch->proto->rx_batch(ch, pkts, k);
        if (k < (int)SEG_MAX)
            return;
    }
}

static void kind_sink(void *ch, struct rtudp_rx_pkt *run, int k)
{
    to_kind(ch, run, k);
}

/* hand pkts[0..n) to the kind in order (rx_publish.h): each datagram kept to the
 * channel's cap (a GRO receive was taken whole, into a bigger buffer), coalesced ones
 * split; a kind that takes none still has the kernel's drop count noted */
static void hand_on(struct rtudp_rx *rx, struct rtudp_rx_chan *c, struct rtudp_rx_pkt *pkts,
                    int n)
{
    struct rtudp_chan *ch = chan_of(c);
    if (ch->proto->rx_batch) {
        rtudp_rx_in_order(c->block, pkts, n, c->cap, rx->seg_buf, kind_sink, ch);
        return;
    }
    for (int i = 0; i < n; i++)
        rtudp_rx_note_drops(c->block, &pkts[i]);
}

/* A reader holds c's socket (rx_publish.h): keep it out of the epoll interest, so a
 * datagram wakes that reader alone, and look at the token again when its lease ends.
 * EPOLLET stays: the error queue's TX stamps must not report level-triggered. */
static void reader_holds(struct rtudp_rx *rx, struct rtudp_rx_chan *c, int64_t now)
{
    c->pending = 0;
    c->reader_check_ns = rtudp_drx_check_at(c->block, now);
    if (c->reader_holds)
        return;
    struct epoll_event ev = {.events = EPOLLET, .data.u64 = event_key(c)};
    if (epoll_ctl(rx->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        if (!c->may_gather) /* what the reader reads ends no gather */
            epoll_ctl(rx->urgent_epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->reader_holds = 1;
        atomic_fetch_add_explicit(&rx->readers_hold, 1, memory_order_relaxed);
    }
}

/* Back from a reader: the socket in the epoll interest again.  Re-arming looks at
 * the socket, so what came meanwhile is reported; it is read at once anyway. */
static void worker_reads(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = event_key(c)};
    if (c->reader_holds && epoll_ctl(rx->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        if (!c->may_gather)
            epoll_ctl(rx->urgent_epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->reader_holds = 0;
        atomic_fetch_sub_explicit(&rx->readers_hold, 1, memory_order_relaxed);
    }
    set_pending(rx, c);
}

/*
 * A socket a reader holds, when its check is due: taken back if the reader let it go
 * or its lease passed (the drain that follows reads what waits).  A reader that waits
 * in a call and read nothing since the last check (a quiet channel) keeps it, but the
 * socket goes back into the epoll interest: the next datagram wakes this thread once,
 * which keeps it out again, instead of a check every lease while nothing comes.
 */
static void check_reader(struct rtudp_rx *rx, struct rtudp_rx_chan *c, int64_t now)
{
    if (now < c->reader_check_ns)
        return;
    uint64_t published = load_relaxed(&c->block->rx_packets);
    if (rtudp_drx_worker_take(c->block, now)) {
        worker_reads(rx, c);
    } else if (rtudp_drx_reader_waits(c->block) && published == c->reader_seen) {
        worker_reads(rx, c);
        c->pending = 0; /* the reader reads it: only wake-ups are wanted back */
    } else {
        c->reader_check_ns = rtudp_drx_check_at(c->block, now);
    }
    c->reader_seen = published;
}

/* read c until the kernel has nothing more (or RX_ROUNDS batches); the receives read.
 * Only while the RX side's token is the worker's (rx_publish.h). */
static int drain_held(struct rtudp_rx *rx, struct rtudp_rx_chan *c);

static int drain(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    int64_t now = rtudp_now_ns();
    if (!rtudp_drx_worker_take(c->block, now)) {
        reader_holds(rx, c, now);
        return 0;
    }
    if (c->reader_holds)
        worker_reads(rx, c);
    int got = drain_held(rx, c);
    rtudp_drx_worker_give(c->block);
    if (got > 0 && !c->may_gather)
        rx->turn_urgent = 1;
    return got;
}

static int drain_held(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    int got = 0;
    struct rtudp_rx_pkt pkts[RX_BATCH];
    /* with GRO a receive must take the whole 64 KiB: a shorter buffer would cut
     * whole datagrams off a coalesced one (hand_on applies cap per datagram) */
    uint32_t recv_cap = c->gro ? RTUDP_RX_RECV_MAX : c->cap;
    for (int round = 0; round < RX_ROUNDS; round++) {
        for (unsigned i = 0; i < RX_BATCH; i++) {
            pkts[i].buf = rx->buf + (size_t)i * RX_SLOT + RTUDP_RX_META_ROOM;
            pkts[i].cap = recv_cap;
        }
        int r = rtudp_net_recv_batch(c->fd, pkts, RX_BATCH);
        if (r < 0) {
            bump(&c->block->rx_errors, 1);
            /* an ICMP error reported on a connected socket: data may still wait */
            if (errno == ECONNREFUSED)
                continue;
            c->pending = 0; /* new data brings a new edge */
            return got;
        }
        if (r > 0)
            hand_on(rx, c, pkts, r);
        got += r;
        if (r < RX_BATCH) {
            c->pending = 0; /* drained: the next datagram is a new edge */
            return got;
        }
    }
    return got;
}

static void apply(struct rtudp_rx *rx, struct rtudp_rx_req *q)
{
    struct rtudp_rx_chan *c = q->ch;
    q->rc = RTUDP_OK;
    if (q->op == RX_ADD) {
        if (rx->chans[chan_of(c)->slot]) {
            q->rc = RTUDP_EFULL; /* its table slot is another channel's still */
            return;
        }
        if (rtudp_chanheap_reserve(&rx->timers, rx->n_chans + 1) != RTUDP_OK) {
            q->err = ENOMEM;
            q->rc = RTUDP_ESYS;
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = event_key(c)};
        if (epoll_ctl(rx->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            q->err = errno;
            q->rc = RTUDP_ESYS;
            return;
        }
        if (!c->may_gather && epoll_ctl(rx->urgent_epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            q->err = errno;
            q->rc = RTUDP_ESYS;
            epoll_ctl(rx->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
        c->reader_holds = 0;
        c->listed = 1;
        c->in_pend = 0;
        c->timer_node.at = RTUDP_CHANHEAP_NONE;
        c->timer_node.index = 0;
        set_pending(rx, c); /* whatever queued before registration */
        rekey(rx, c);
        rx->chans[chan_of(c)->slot] = c;
        rx->n_chans++;
    } else if (q->op == RX_REMOVE && c->listed) {
        epoll_ctl(rx->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        if (!c->may_gather)
            epoll_ctl(rx->urgent_epfd, EPOLL_CTL_DEL, c->fd, NULL);
        if (c->reader_holds)
            atomic_fetch_sub_explicit(&rx->readers_hold, 1, memory_order_relaxed);
        c->reader_holds = 0;
        rx->chans[chan_of(c)->slot] = NULL;
        rx->n_chans--;
        for (uint32_t i = 0; c->in_pend && i < rx->n_pend; i++)
            if (rx->pend[i] == c) {
                rx->pend[i] = rx->pend[--rx->n_pend];
                c->in_pend = 0;
            }
        rtudp_chanheap_set(&rx->timers, &c->timer_node, RTUDP_CHANHEAP_NONE);
        c->listed = 0;
    }
}

static void serve_request(struct rtudp_rx *rx)
{
    uint64_t v;
    if (read(rx->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&rx->mu);
    struct rtudp_rx_req *q = rx->req;
    if (q) {
        apply(rx, q);
        q->done = 1;
        rx->req = NULL;
        pthread_cond_broadcast(&rx->cv);
    }
    pthread_mutex_unlock(&rx->mu);
}

/* The RX thread, back from its wait: whether it still owns the RX work.  The TX
 * thread may have taken it meanwhile (RX_OWN_IDLE -> RX_OWN_TX), and given it back, or
 * asked for it again, since. */
static int rx_reclaim(struct rtudp_rx *rx)
{
    uint32_t own = atomic_load_explicit(&rx->own, memory_order_acquire);
    for (;;) {
        if (own == RX_OWN_TX)
            return 0;
        if (own != RX_OWN_IDLE)
            return 1; /* RX (given back) or WANTED (ours, asked for) */
        if (atomic_compare_exchange_weak_explicit(&rx->own, &own, RX_OWN_RX, memory_order_acq_rel,
                                                  memory_order_acquire))
            return 1;
    }
}

/* a channel whose time in rx->timers came: its kind's timer, its held datagrams, the
 * reader that holds its socket */
static void serve_timer(struct rtudp_rx *rx, struct rtudp_rx_chan *c, int64_t now)
{
    if (c->timer_ns <= now) {
        struct rtudp_chan *ch = chan_of(c);
        c->timer_ns = ch->proto->rx_timer ? ch->proto->rx_timer(ch, now) : RTUDP_PROTO_NEVER;
        rtudp_async_wake(&c->block->async_wait, RTUDP_ASYNC_RX, &c->waiters);
    }
    if (!c->reader_holds && rtudp_holdq_next_due(&c->hold) <= now) {
        /* published as received ones are: only while the RX side is the worker's */
        if (rtudp_drx_worker_take(c->block, now)) {
            release_held(c, now);
            rtudp_drx_worker_give(c->block);
            rtudp_async_wake(&c->block->async_wait, RTUDP_ASYNC_RX, &c->waiters);
        } else {
            reader_holds(rx, c, now);
        }
    }
    if (c->reader_holds)
        check_reader(rx, c, now);
}

/* the channels whose time came (each once a turn), served; the next time any comes */
static int64_t serve_timers(struct rtudp_rx *rx, int64_t now)
{
    struct rtudp_rx_chan *due[RX_TIMERS_MAX];
    uint32_t n = 0;
    while (n < RX_TIMERS_MAX && rtudp_chanheap_next(&rx->timers) <= now) {
        struct rtudp_chanheap_node *node = rtudp_chanheap_first(&rx->timers);
        due[n++] = (struct rtudp_rx_chan *)((char *)node - offsetof(struct rtudp_rx_chan, timer_node));
        rtudp_chanheap_set(&rx->timers, node, RTUDP_CHANHEAP_NONE);
    }
    for (uint32_t i = 0; i < n; i++)
        serve_timer(rx, due[i], now);
    for (uint32_t i = 0; i < n; i++)
        rekey(rx, due[i]);
    return n == RX_TIMERS_MAX ? now : rtudp_chanheap_next(&rx->timers);
}

/* whether a channel in the pending list still has data to read */
static int any_pending(const struct rtudp_rx *rx)
{
    for (uint32_t i = 0; i < rx->n_pend; i++)
        if (rx->pend[i]->pending)
            return 1;
    return 0;
}

/* the events a wait took after it lost the RX work (rx->lost): their channels pending */
static void take_lost(struct rtudp_rx *rx)
{
    int n = atomic_exchange_explicit(&rx->rescan, 0, memory_order_acq_rel);
    for (int i = 0; i < n && i < RX_EVENTS; i++)
        pending_by_key(rx, rx->lost[i]);
}

/* every pending channel read (a flooded one up to RX_ROUNDS batches); the list keeps
 * those left with data, and those marked while it was read */
static int read_pending(struct rtudp_rx *rx)
{
    int read = 0;
    uint32_t n = rx->n_pend;
    for (uint32_t i = 0; i < n; i++) {
        struct rtudp_rx_chan *c = rx->pend[i];
        if (!c->pending)
            continue;
        read += drain(rx, c);
        /* event loops waiting for what was just published (asyncwake.h) */
        rtudp_async_wake(&c->block->async_wait, RTUDP_ASYNC_RX, &c->waiters);
        rekey(rx, c); /* the kind may have set its timer, the impairment held some */
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < rx->n_pend; i++) {
        struct rtudp_rx_chan *c = rx->pend[i];
        if (c->pending)
            rx->pend[kept++] = c;
        else
            c->in_pend = 0;
    }
    rx->n_pend = kept;
    return read;
}

/* Datagrams were read: work (sched.c, rtudp_w_rest).  The mark is stored only once
 * the TX thread has taken the last one (a tick's load and exchange), so a busy RX side
 * costs a load a turn; a resting worker's TX thread is woken, to poll again.  seq_cst,
 * as rtudp_w_rest's: either it sees the mark, or this sees `rest` */
static void note_work(struct rtudp_rx *rx)
{
    if (!atomic_load(&rx->worked))
        atomic_store(&rx->worked, 1);
    if (atomic_load(&rx->rest) && atomic_exchange(&rx->rest, 0) && rx->bell)
        rtudp_bell_ring(rx->bell);
}

/* One turn: the kinds' timers, a wait on the sockets (may_wait: as long as no timer
 * asks; else none), then every channel with data.  Run by the RX thread, or by the TX
 * thread while it owns the RX side (rtudp_rx_poll).  Returns the receives it read. */
static int rx_turn(struct rtudp_rx *rx, struct epoll_event *ev, int may_wait)
{
    /* no timeout unless a channel's timer asks: stop and requests come on the
     * eventfd, and a periodic wake-up at SCHED_FIFO would wait behind the TX
     * thread's deadline spin, then cut into it */
    take_lost(rx);
    rx->turn_urgent = 0;
    int64_t now = rtudp_now_ns();
    int64_t next = serve_timers(rx, now);
    int busy = any_pending(rx);
    struct timespec ts = {0, 0};
    if (may_wait && !busy && next > now) {
        ts.tv_sec = (next - now) / 1000000000;
        ts.tv_nsec = (next - now) % 1000000000;
    }
    int forever = may_wait && !busy && next == INT64_MAX;
    if (may_wait) {
        /* while it waits, the RX thread is idle: the TX thread may take the RX work
         * then without waiting for this thread to run (rtudp_rx_take) */
        uint32_t own = RX_OWN_RX;
        if (!atomic_compare_exchange_strong_explicit(&rx->own, &own, RX_OWN_IDLE,
                                                     memory_order_acq_rel, memory_order_acquire))
            return 0; /* asked for it: hand over first (rx_main) */
    }
    int n = epoll_pwait2(rx->epfd, ev, RX_EVENTS, forever ? NULL : &ts, NULL);
    if (may_wait) {
        rx->prev_woke_ns = rx->woke_ns;
        rx->woke_ns = rtudp_now_ns();
    }
    if (may_wait && !rx_reclaim(rx)) {
        /* the TX thread has the RX work now: it reads these channels (take_lost) */
        for (int i = 0; i < n; i++)
            rx->lost[i] = ev[i].events & EPOLLIN ? ev[i].data.u64 : 0;
        if (n > 0)
            atomic_store_explicit(&rx->rescan, n, memory_order_release);
        return 0;
    }
    if (n < 0 && errno != EINTR) {
        fprintf(stderr, "rtudp-worker: RX epoll_pwait2: %s\n", strerror(errno));
        if (may_wait) {
            struct timespec pause = {0, RX_PAUSE_NS};
            nanosleep(&pause, NULL);
        }
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (!ev[i].data.u64)
            serve_request(rx);
        else if (ev[i].events & EPOLLIN)
            pending_by_key(rx, ev[i].data.u64);
    }
    int got = read_pending(rx);
    if (got > 0)
        note_work(rx);
    return got;
}

static void futex_wait_while(atomic_uint *word, uint32_t value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static int64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The RX thread under a flood: the worker's real-time CPU time is capped by the TX
 * thread's rule (spin.h, rtudp_cap_ahead), or the kernel's RT throttle or fair
 * server would take the CPU for tens of ms.  While the worker runs ahead of the pace
 * to the cap the RX thread sleeps RX_CAPPED_SLEEP_NS after each busy turn: datagrams
 * wait in the socket meanwhile, stamped by the kernel when they came.  The process's
 * CPU time is a system call: read at most every RX_CPU_READ_NS, and only after busy
 * turns; the verdict holds until the next read.
 */
static int rx_keep_under_cap(struct rtudp_rx *rx, int busy)
{
    if (!rx->rt || !rtudp_mech_on(rx->off, RTUDP_MECH_RX_CAP))
        return 0;
    int64_t now = rtudp_now_ns();
    if (now - rx->cap_window_start >= RTUDP_SPIN_WINDOW_NS) {
        rx->cap_window_start = now;
        rx->cap_window_cpu = process_cpu_ns();
        rx->cap_read_at = now;
        rx->cap_ahead = 0;
        return 0;
    }
    if (!busy)
        return 0;
    if (now - rx->cap_read_at >= RX_CPU_READ_NS) {
        rx->cap_read_at = now;
        rx->cap_ahead = rtudp_cap_ahead(now - rx->cap_window_start,
                                        process_cpu_ns() - rx->cap_window_cpu,
                                        RTUDP_SPIN_WINDOW_NS);
    }
    if (!rx->cap_ahead)
        return 0;
    struct timespec pause = {0, RX_CAPPED_SLEEP_NS};
    nanosleep(&pause, NULL);
    atomic_fetch_add_explicit(&rx->capped_sleeps, 1, memory_order_relaxed);
    return 1;
}

#define RX_GATHER_MIN 2 /* receives in one turn that say they come faster than turns */

/*
 * Wake-up coalescing.  Each wake-up costs this thread, and the sender whose datagram
 * woke it, CPU time on a VM (an interrupt between CPUs, two switches): at a high
 * packet rate one per datagram takes most of a CPU and leaves too little of it to
 * the programs there (docs/measurements.md at d3e5a6a, "RX wake-ups coalesced").
 * A turn that read two or more receives says they come faster than this thread wakes:
 * it then waits coalesce_ns for the next ones to gather before it looks again, and
 * goes on doing so while each turn finds two or more.  A turn with one ends it, so a
 * request and its reply (one datagram in flight) never wait, nor does a slow stream.
 * The kernel stamped each datagram when it came: arrival times stay exact, and the
 * wait shows in rx_delay.  A channel still left with data is read at once.  While it
 * waits the thread is idle, so a spinning TX thread may take the RX work meanwhile.
 */
static void rx_coalesce(struct rtudp_rx *rx, int got)
{
    if (!rtudp_rx_turn_waits(got, 0, rx->coalesce_ns))
        return; /* the rule the TX thread's turns follow too */
    if (any_pending(rx))
        return;
    uint32_t own = RX_OWN_RX;
    if (!atomic_compare_exchange_strong_explicit(&rx->own, &own, RX_OWN_IDLE,
                                                 memory_order_acq_rel, memory_order_acquire))
        return; /* asked for the RX work: hand it over first (rx_main) */
    struct timespec ts = {rx->coalesce_ns / 1000000000, rx->coalesce_ns % 1000000000};
    nanosleep(&ts, NULL);
    atomic_fetch_add_explicit(&rx->coalesced, 1, memory_order_relaxed);
    rx_reclaim(rx); /* taken meanwhile: rx_main waits until it is given back */
}

/*
 * Gathering.  Channels whose kind reads on a clock of its own (an RTP jitter buffer
 * releases each frame a latency after its kernel stamp) lose nothing when a datagram
 * waits in the socket a little: they say so with may_gather.  Many such channels at
 * a modest rate each (a thousand RTP streams) wake this thread once per datagram,
 * each wake-up on its own socket, so rx_coalesce's two-at-once rule never holds;
 * their wake-ups, not their datagrams, then take most of the RX thread's CPU.
 * When a turn read only such channels and woke soon after the one before, and from
 * then on while each turn finds some (rtudp_rx_gathers), the thread waits up to
 * RTUDP_RX_GATHER_NS, and not past the next kind timer (gathering channels' timers
 * keep to that grid: rekey), on urgent_epfd: the eventfd and every channel that may
 * not wait.
 * A datagram for one of those, or a request, ends the wait at once; the rest gather
 * and are read in the next turn, their stamps exact.
 */
static int rx_gather(struct rtudp_rx *rx, int got)
{
    /* nothing read: the turn may have lost the RX work to the TX thread, whose turns
     * write turn_urgent; only a turn that read (and so still has the work) looks */
    if (got <= 0) {
        rx->gathering = 0;
        return 0;
    }
    int go = rtudp_rx_gathers(got, rx->turn_urgent, rx->gathering,
                              rx->woke_ns - rx->prev_woke_ns, rx->coalesce_ns);
    rx->gathering = go;
    if (!go || any_pending(rx))
        return 0;
    int64_t now = rtudp_now_ns();
    int64_t until = now + RTUDP_RX_GATHER_NS;
    int64_t timer = rtudp_chanheap_next(&rx->timers);
    if (timer < until)
        until = timer;
    if (until <= now)
        return 0;
    uint32_t own = RX_OWN_RX;
    if (!atomic_compare_exchange_strong_explicit(&rx->own, &own, RX_OWN_IDLE,
                                                 memory_order_acq_rel, memory_order_acquire))
        return 1; /* asked for the RX work: hand it over first (rx_main) */
    struct timespec ts = {(until - now) / 1000000000, (until - now) % 1000000000};
    struct epoll_event ev[8];
    /* what it reports is only a reason to stop waiting: the main set reports the
     * same datagrams and requests to the turn that follows */
    epoll_pwait2(rx->urgent_epfd, ev, 8, &ts, NULL);
    atomic_fetch_add_explicit(&rx->gathered, 1, memory_order_relaxed);
    rx_reclaim(rx); /* taken meanwhile: rx_main waits until it is given back */
    return 1;
}

int64_t rtudp_rx_gather_grid(int64_t at)
{
    if (at <= 0 || at >= INT64_MAX - RTUDP_RX_GATHER_NS)
        return at; /* RTUDP_PROTO_NEVER and the like stay as they are */
    return (at + RTUDP_RX_GATHER_NS - 1) / RTUDP_RX_GATHER_NS * RTUDP_RX_GATHER_NS;
}

int rtudp_rx_gathers(int got, int urgent, int gathering, int64_t since_ns, int64_t coalesce_ns)
{
    return coalesce_ns > 0 && got > 0 && !urgent &&
           (gathering || (since_ns >= 0 && since_ns < RTUDP_RX_GATHER_NS));
}

static void *rx_main(void *arg)
{
    struct rtudp_rx *rx = arg;
    struct epoll_event ev[RX_EVENTS];
    int policy;
    struct sched_param sp;
    rx->rt = pthread_getschedparam(pthread_self(), &policy, &sp) == 0 &&
             (policy == SCHED_FIFO || policy == SCHED_RR);
    while (!atomic_load_explicit(&rx->stop, memory_order_acquire)) {
        uint32_t own = RX_OWN_WANTED;
        /* the TX thread asked for the RX side: hand it over (release: everything this
         * thread wrote is its), then sleep until it is given back */
        if (atomic_compare_exchange_strong_explicit(&rx->own, &own, RX_OWN_TX,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire) ||
            own == RX_OWN_TX) {
            while (atomic_load_explicit(&rx->own, memory_order_acquire) == RX_OWN_TX &&
                   !atomic_load_explicit(&rx->stop, memory_order_acquire))
                futex_wait_while(&rx->own, RX_OWN_TX);
            /* what came meanwhile and was not read stays reported by epoll (an edge
             * not yet taken) or in the pending list; a wait of ours that took events
             * after the handover left them in rx->lost (take_lost) */
            continue;
        }
        int got = rx_turn(rx, ev, 1);
        if (!rx_keep_under_cap(rx, got > 0) && !rx_gather(rx, got))
            rx_coalesce(rx, got);
    }
    return NULL;
}

int rtudp_rx_take(struct rtudp_rx *rx)
{
    if (!rx->running)
        return 0;
    uint32_t own = atomic_load_explicit(&rx->own, memory_order_acquire);
    for (;;) {
        if (own == RX_OWN_TX)
            return 1;
        if (own == RX_OWN_WANTED)
            return 0; /* asked already: the RX thread hands over at its next turn */
        /* idle (waiting on the sockets): take it now; busy: ask */
        uint32_t to = own == RX_OWN_IDLE ? RX_OWN_TX : RX_OWN_WANTED;
        if (atomic_compare_exchange_weak_explicit(&rx->own, &own, to, memory_order_acq_rel,
                                                  memory_order_acquire))
            return to == RX_OWN_TX;
    }
}

int rtudp_rx_held(struct rtudp_rx *rx)
{
    return atomic_load_explicit(&rx->own, memory_order_acquire) == RX_OWN_TX;
}

int rtudp_rx_turn_waits(int last_got, int64_t since_ns, int64_t coalesce_ns)
{
    return coalesce_ns > 0 && last_got >= RX_GATHER_MIN && since_ns < coalesce_ns;
}

int rtudp_rx_poll(struct rtudp_rx *rx)
{
    struct epoll_event ev[RX_EVENTS];
    return rx_turn(rx, ev, 0);
}

void rtudp_rx_give(struct rtudp_rx *rx)
{
    uint32_t own = RX_OWN_WANTED;
    if (atomic_compare_exchange_strong_explicit(&rx->own, &own, RX_OWN_RX, memory_order_relaxed,
                                                memory_order_relaxed))
        return; /* asked, never taken */
    if (own == RX_OWN_TX) {
        atomic_store_explicit(&rx->own, RX_OWN_RX, memory_order_release);
        futex_wake_all(&rx->own);
    }
}

int rtudp_rx_start(struct rtudp_rx *rx, int64_t coalesce_ns, uint32_t off)
{
    memset(rx, 0, sizeof *rx);
    rx->coalesce_ns = coalesce_ns;
    rx->off = off;
    rx->epfd = rx->efd = rx->urgent_epfd = -1;
    pthread_mutex_init(&rx->mu, NULL);
    pthread_cond_init(&rx->cv, NULL);
    rx->buf = malloc((size_t)RX_BATCH * RX_SLOT);
    rx->seg_buf = malloc(SEG_BUF);
    rx->epfd = epoll_create1(EPOLL_CLOEXEC);
    rx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    rx->urgent_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!rx->buf || !rx->seg_buf || rx->epfd < 0 || rx->efd < 0 || rx->urgent_epfd < 0) {
        fprintf(stderr, "rtudp-worker: RX thread setup: %s\n", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0}; /* 0: the eventfd */
    if (epoll_ctl(rx->epfd, EPOLL_CTL_ADD, rx->efd, &ev) != 0 ||
        epoll_ctl(rx->urgent_epfd, EPOLL_CTL_ADD, rx->efd, &ev) != 0) {
        fprintf(stderr, "rtudp-worker: RX epoll_ctl(eventfd): %s\n", strerror(errno));
        return -1;
    }
    int e = rtudp_w_thread_start(&rx->thread, RX_STACK, rx_main, rx);
    if (e) {
        fprintf(stderr, "rtudp-worker: cannot start the RX thread: %s\n", strerror(e));
        return -1;
    }
    rx->running = 1;
    return 0;
}

static void kick(struct rtudp_rx *rx)
{
    uint64_t one = 1;
    if (write(rx->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        fprintf(stderr, "rtudp-worker: RX eventfd: %s\n", strerror(errno));
}

void rtudp_rx_stop(struct rtudp_rx *rx)
{
    if (rx->running) {
        atomic_store_explicit(&rx->stop, 1, memory_order_release);
        kick(rx);
        futex_wake_all(&rx->own);
        pthread_join(rx->thread, NULL);
        rx->running = 0;
    }
    if (rx->epfd >= 0)
        close(rx->epfd);
    if (rx->efd >= 0)
        close(rx->efd);
    if (rx->urgent_epfd >= 0)
        close(rx->urgent_epfd);
    rx->epfd = rx->efd = rx->urgent_epfd = -1;
    free(rx->buf);
    rx->buf = NULL;
    free(rx->seg_buf);
    rx->seg_buf = NULL;
    rtudp_chanheap_free(&rx->timers);
    pthread_mutex_destroy(&rx->mu);
    pthread_cond_destroy(&rx->cv);
}

/* hand q to the RX thread and wait until it is applied (no thread: apply here) */
static int submit(struct rtudp_rx *rx, struct rtudp_rx_req *q)
{
    /* only the TX thread submits: while it owns the RX side it applies requests itself */
    if (!rx->running || atomic_load_explicit(&rx->own, memory_order_acquire) == RX_OWN_TX) {
        apply(rx, q);
        errno = q->err;
        return q->rc;
    }
    pthread_mutex_lock(&rx->mu);
    rx->req = q;
    kick(rx);
    while (!q->done)
        pthread_cond_wait(&rx->cv, &rx->mu);
    pthread_mutex_unlock(&rx->mu);
    errno = q->err;
    return q->rc;
}

int rtudp_rx_add(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    struct rtudp_rx_req q = {.op = RX_ADD, .ch = c};
    return submit(rx, &q);
}

void rtudp_rx_remove(struct rtudp_rx *rx, struct rtudp_rx_chan *c)
{
    struct rtudp_rx_req q = {.op = RX_REMOVE, .ch = c};
    submit(rx, &q);
}
