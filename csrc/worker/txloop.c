/*
 * txloop.c - the TX thread (the process's main thread): take records from the
 * sending channels' TX rings into the timer queue, park on the worker's doorbell
 * until shortly before the next deadline, spin the rest, send what is due with one
 * sendmmsg per channel, and free ring space only once a packet has left.
 *
 * Waiting: clients put into a TX ring, then ring workers[id].bell; the supervisor
 * rings it after each command.  The park ends at deadline - spin margin (spin.h),
 * or at the next heartbeat tick / TX-stamp timeout, whichever is first; then the
 * thread spins, within the spin budget, to the deadline itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "txfault.h"
#include "txjournal.h"
#include "worker.h"

#define POP_MAX 256                 /* timers taken per pop (and per sendmmsg at most) */
#define READ_MAX 1024               /* records read per channel per loop: send in between */
#define TQ_MIN 1024
#define EAGAIN_BACKOFF_NS 50000LL   /* socket buffer full: retry after this */
#define SPIN_START_NS 20000LL
#define CPU_READ_EVERY_NS 1000000LL /* process CPU time: a fresh read at most this often */
#define SPIN_MIN_NS 5000LL
#define SPIN_MAX_NS 200000LL
/* TX stamps are read in batches, each read being a system call: once this many wait,
 * before a park longer than STAMP_HOLD_NS, and at least every STAMP_HOLD_NS while any
 * waits (a socket's error queue holds a few hundred stamps) */
#define STAMP_BATCH 32
/* Past the RT cap with no drop to SCHED_OTHER allowed (a task that shares the CPU
 * preempted the dropped thread for a whole slice), the thread must leave the CPU: it
 * sleeps at least this long and then sends everything due.  Packets due meanwhile are
 * late by up to this; the wake-up's CPU cost (~20 us on a VM) is spread over them. */
#define CAPPED_SLEEP_NS 50000LL
/* the TX thread keeps the RX work over sleeps shorter than this (datagrams wait in
 * the socket meanwhile, stamped by the kernel); over longer ones the RX thread has it */
#define RX_KEEP_NS 200000LL
#define SLEEP_SAMPLE_EVERY 8        /* timed sleeps: the CPU cost of one in this many */
#define STAMP_HOLD_NS 1000000LL




int rtudp_tx_init(struct rtudp_worker *w)
{
    int64_t now = rtudp_now_ns();
    int64_t budget = RTUDP_SPIN_WINDOW_NS / 1000 * w->spin_budget_permille;
    rtudp_spin_init(&w->spin, SPIN_START_NS, SPIN_MIN_NS, SPIN_MAX_NS, budget,
                    RTUDP_SPIN_WINDOW_NS, now);
    rtudp_w_rt_probe(w);
    return rtudp_timerq_init(&w->tq, TQ_MIN);
}

void rtudp_tx_free(struct rtudp_worker *w)
{
    rtudp_timerq_free(&w->tq);
}

int rtudp_tx_reserve(struct rtudp_worker *w, uint32_t more)
{
    uint64_t need = more;
    for (uint32_t i = 0; i < w->n_active; i++)
        if (w->active[i]->sends)
            need += w->active[i]->inflight.capacity;
    if (need <= w->tq.capacity)
        return RTUDP_OK;
    if (need > UINT32_MAX / 4)
        return RTUDP_EINVAL;
    /* no resize in timerq: move everything into a bigger queue (pops come out in
     * (deadline, order) order, so pushing them back keeps ties in order) */
    struct rtudp_timerq bigger;
    int rc = rtudp_timerq_init(&bigger, (uint32_t)need);
    if (rc != RTUDP_OK)
        return rc;
    struct rtudp_timer t;
    while (rtudp_timerq_pop(&w->tq, &t) == RTUDP_OK)
        rtudp_timerq_push(&bigger, &t);
    rtudp_timerq_free(&w->tq);
    w->tq = bigger;
    return RTUDP_OK;
}

/* rtudp_mpsc_wait_at's test: a committed record (or padding) waits at the cursor */
static int tx_readable(const struct rtudp_chan *c)
{
    if (!c->sends || c->tx_broken)
        return 0;
    return rtudp_mpsc_readable_at(&c->tx, c->cursor);
}

static int any_readable(const struct rtudp_worker *w)
{
    for (uint32_t i = 0; i < w->n_active; i++)
        if (tx_readable(w->active[i]))
            return 1;
    return 0;
}

static bool wake_ready(const void *ctx)
{
    const struct rtudp_worker *w = ctx;
    return rtudp_w_signalled || any_readable(w) || rtudp_w_cmd_ready(w);
}

/* free the ring up to the first packet not yet sent */
static void release(struct rtudp_chan *c)
{
    uint64_t upto = rtudp_inflight_release_point(&c->inflight);
    if (rtudp_inflight_empty(&c->inflight))
        upto = c->cursor; /* padding the tracker never saw */
    if (upto != load_relaxed(&c->tx.ring->head) && rtudp_mpsc_release(&c->tx, upto) != RTUDP_OK) {
        rtudp_tx_fault(c, "head moved under us", upto);
    }
}

/* TX ring -> in-flight tracker + timer queue */
static void consume(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now)
{
    uint64_t taken = 0, immediate = 0, late = 0;
    for (int k = 0; k < READ_MAX; k++) {
        uint64_t before = c->cursor;
        struct rtudp_tx_record *rec;
        uint32_t len;
        int rc = rtudp_mpsc_next(&c->tx, &c->cursor, &rec, &len);
        if (rc == RTUDP_EMPTY)
            break;
        if (rc != RTUDP_OK) {
            rtudp_tx_fault(c, "corrupt", c->cursor);
            break;
        }
        uint64_t pos = c->cursor - align8(sizeof *rec + len);
        uint32_t slot;
        if (rtudp_inflight_push(&c->inflight, pos, c->cursor, &slot) != RTUDP_OK) {
            c->cursor = before; /* cannot happen (sized to the ring); read it again later */
            break;
        }
        int64_t asked = rec->send_at_ns, at = asked;
        if (at <= now) {
            /* 0 or past = send now, in submission order (a "now" must not jump ahead of
             * packets already late); lateness still counts from what the user asked */
            immediate++;
            late += asked != 0;
            at = now;
        }
        struct rtudp_timer t = {.send_at_ns = at, .asked_ns = asked ? asked : at,
                                .channel = c->slot, .slot = slot,
                                .ring_pos = pos, .payload = (const uint8_t *)(rec + 1),
                                .len = len, .flags = rec->flags};
        if (c->proto->tx_record && c->proto->tx_record(c, rec, len, now, &t) != 0) {
            /* the kind refused it: freed, counted, never sent */
            rtudp_mpsc_mark_sent(&c->tx, pos);
            rtudp_inflight_done_at(&c->inflight, slot, pos);
            bump(&c->block->tx_errors, 1);
        } else if (rtudp_timerq_push(&w->tq, &t) != RTUDP_OK) {
            /* cannot happen (reserved per channel); drop rather than wedge the ring */
            rtudp_inflight_done_at(&c->inflight, slot, pos);
            bump(&c->block->tx_errors, 1);
        }
        taken++;
    }
    if (taken) {
        bump(&c->block->tx_requested, taken);
        if (immediate)
            bump(&c->block->tx_immediate, immediate);
        if (late)
            bump(&c->block->tx_late, late);
    }
    if (rtudp_inflight_empty(&c->inflight))
        release(c); /* the cursor may have stepped over padding only */
}

static void on_stamp(void *ctx, uint32_t key, int64_t mono_ns)
{
    struct rtudp_chan *c = ctx;
    rtudp_txstamps_stamp(&c->stamps, c->block, key, mono_ns);
}

static void read_stamps(struct rtudp_chan *c, int64_t now)
{
    if (!c->caps.sw_tx)
        return;
    rtudp_net_read_tx_stamps(c->tx_fd, on_stamp, c);
    rtudp_txstamps_expire(&c->stamps, c->block, now);
    c->stamps_read_ns = now;
}

/* when the stamps waiting on c are to be read at the latest (INT64_MAX: none wait) */
static int64_t stamps_read_by(const struct rtudp_chan *c)
{
    if (!c->stamps.len)
        return INT64_MAX;
    int64_t expire = rtudp_txstamps_deadline(&c->stamps);
    int64_t oldest_sent = expire - c->stamps.wait_ns;
    int64_t by = (oldest_sent > c->stamps_read_ns ? oldest_sent : c->stamps_read_ns) +
                 STAMP_HOLD_NS;
    return by < expire ? by : expire;
}

/* packets that left under one key (one, or a GSO send's): their lateness comes
 * with the kernel's TX stamp, else from the send */
static void departed(struct rtudp_chan *c, const struct rtudp_tx_pkt *p, int64_t asked_ns,
                     uint64_t packets)
{
    if (c->caps.sw_tx)
        rtudp_txstamps_sent(&c->stamps, c->block, p->tskey, asked_ns, p->sent_ns, packets);
    else
        rtudp_txstamps_record(c->block, asked_ns, p->sent_ns, 0, packets);
}

/* the records about to go, with their TX-stamp keys, for a successor if we die in
 * the send (txjournal.h); only where the kernel's stamps can prove a departure */
static void journal_begin(struct rtudp_chan *c, const struct rtudp_timer *due,
                          const uint32_t *idx, uint32_t n, int one_key)
{
    uint32_t key0;
    if (!c->caps.sw_tx || rtudp_net_next_key(c->tx_fd, &key0) != RTUDP_OK)
        return;
    uint64_t pos[RTUDP_TX_JOURNAL_MAX];
    if (n > RTUDP_TX_JOURNAL_MAX)
        n = RTUDP_TX_JOURNAL_MAX;
    for (uint32_t k = 0; k < n; k++)
        pos[k] = due[idx[k]].ring_pos;
    rtudp_txj_begin(&c->block->tx_journal, key0, one_key, pos, n);
}

/*
 * GSO runs: due timers that can leave as one GSO send have the same length (not 0)
 * and the same deadline (one TX stamp then times them all), within the kernel's
 * limits.  Immediate sends taken in one pass share their deadline (the time they
 * were taken), so a send_many batch goes as a few GSO sends.
 */
static bool joins_run(const struct rtudp_timer *first, const struct rtudp_timer *t,
                      uint64_t bytes_before)
{
    return t->len == first->len && t->asked_ns == first->asked_ns &&
           bytes_before + t->len <= RTUDP_NET_GSO_BYTES;
}

/* how many of idx[0..n) form the GSO run starting at idx[0] (1: none) */
static uint32_t gso_run(const struct rtudp_timer *due, const uint32_t *idx, uint32_t n)
{
    const struct rtudp_timer *t0 = &due[idx[0]];
    if (t0->len == 0)
        return 1;
    uint32_t k = 1;
    while (k < n && k < RTUDP_NET_GSO_MAX && joins_run(t0, &due[idx[k]], (uint64_t)k * t0->len))
        k++;
    return k;
}

/* whether a GSO run of two or more starts at idx[0] */
static bool gso_starts(const struct rtudp_timer *due, const uint32_t *idx, uint32_t n)
{
    return n >= 2 && due[idx[0]].len != 0 && joins_run(&due[idx[0]], &due[idx[1]], due[idx[0]].len);
}

struct tally {
    uint64_t sent, bytes, dropped;
};

/* the timer's packet is gone (sent, or dropped for good): free its ring record */
static void finish(struct rtudp_chan *c, const struct rtudp_timer *t)
{
    rtudp_mpsc_mark_sent(&c->tx, t->ring_pos);
    rtudp_inflight_done_at(&c->inflight, t->slot, t->ring_pos);
}

/* One GSO send of idx[0..k).  1: sent; 0: the socket is full (nothing went);
 * -1: the kernel refused to segment (nothing went: send them one by one). */
static int send_gso(struct rtudp_chan *c, struct rtudp_timer *due, const uint32_t *idx,
                    struct rtudp_tx_pkt *pkts, uint32_t k, const struct sockaddr *dst,
                    struct tally *y)
{
    journal_begin(c, due, idx, k, 1);
    int r = rtudp_net_send_gso(c->tx_fd, pkts, k, dst, c->dst_len);
    int e = errno;
    if (r == (int)k) {
        for (uint32_t q = 0; q < k; q++) {
            finish(c, &due[idx[q]]);
            y->bytes += due[idx[q]].len;
        }
        y->sent += k;
        departed(c, &pkts[0], due[idx[0]].asked_ns, k);
    }
    rtudp_txj_end(&c->block->tx_journal);
    if (r == (int)k)
        return 1;
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

/* send the due timers idx[0..n) of channel c (in deadline order) */
static void send_group(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *due,
                       const uint32_t *idx, uint32_t n, int64_t now)
{
    struct rtudp_tx_pkt pkts[POP_MAX];
    for (uint32_t k = 0; k < n; k++)
        pkts[k] = (struct rtudp_tx_pkt){.data = due[idx[k]].payload, .len = due[idx[k]].len};
    const struct sockaddr *dst = c->dst_len ? (const struct sockaddr *)&c->dst : NULL;
    struct tally y = {0, 0, 0};
    int full = 0;
    uint32_t off = 0;
    while (off < n && !full) {
        if (c->gso_ok && gso_starts(due, idx + off, n - off)) {
            uint32_t run = gso_run(due, idx + off, n - off);
            int g = send_gso(c, due, idx + off, pkts + off, run, dst, &y);
            if (g > 0) {
                off += run;
                continue;
            }
            if (g == 0) {
                full = 1;
                break;
            }
            /* the kernel or the device cannot segment (e.g. a segment beyond the
             * path MTU): this channel sends one datagram per packet from now on */
            c->gso_ok = 0;
        }
        /* one by one (sendmmsg) up to where the next GSO run starts */
        uint32_t end = off + 1;
        while (end < n && !(c->gso_ok && gso_starts(due, idx + end, n - end)))
            end++;
        journal_begin(c, due, idx + off, end - off, 0);
        int r = rtudp_net_send_batch(c->tx_fd, pkts + off, end - off, dst, c->dst_len);
        int e = errno;
        for (int q = 0; q < r; q++) {
            const struct rtudp_timer *t = &due[idx[off + (uint32_t)q]];
            finish(c, t);
            departed(c, &pkts[off + (uint32_t)q], t->asked_ns, 1);
            y.bytes += t->len;
        }
        rtudp_txj_end(&c->block->tx_journal);
        if (r > 0) {
            y.sent += (uint32_t)r;
            off += (uint32_t)r;
            if (off == end)
                continue;
        }
        if (r >= 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
            full = 1;
            break;
        }
        /* packet `off` failed on its own (EMSGSIZE, ECONNREFUSED, no route...): drop
         * it, never retry it forever */
        finish(c, &due[idx[off]]);
        y.dropped++;
        off++;
    }
    if (full) {
        /* buffer full: the rest waits (same deadlines) and the loop backs off */
        for (uint32_t k = off; k < n; k++)
            rtudp_timerq_push(&w->tq, &due[idx[k]]);
        w->backoff_until = now + EAGAIN_BACKOFF_NS;
    }
    struct rtudp_channel_block *b = c->block;
    if (y.sent) {
        bump(&b->tx_packets, y.sent);
        bump(&b->tx_bytes, y.bytes);
    }
    if (y.dropped)
        bump(&b->tx_errors, y.dropped);
    rtudp_mpsc_account(&c->tx, y.sent + y.dropped, y.bytes);
    release(c);
    /* loopback and most drivers stamp during the send call: read them in batches */
    if (y.sent && c->stamps.len >= STAMP_BATCH)
        read_stamps(c, now);
}

int rtudp_tx_send_now(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns)
{
    struct rtudp_tx_pkt pkt = {.data = data, .len = len};
    const struct sockaddr *dst = c->dst_len ? (const struct sockaddr *)&c->dst : NULL;
    int r = rtudp_net_send_batch(c->tx_fd, &pkt, 1, dst, c->dst_len);
    struct rtudp_channel_block *b = c->block;
    if (r != 1) {
        int e = errno;
        if (e != EAGAIN && e != EWOULDBLOCK)
            bump(&b->tx_errors, 1);
        errno = e;
        return -1;
    }
    bump(&b->tx_packets, 1);
    bump(&b->tx_bytes, len);
    departed(c, &pkt, asked_ns, 1);
    if (c->stamps.len >= STAMP_BATCH)
        read_stamps(c, pkt.sent_ns);
    return 0;
}

/* the kinds' own timers (e.g. Netflux's cycle) that have come */
static void run_timers(struct rtudp_worker *w, int64_t now)
{
    for (uint32_t i = 0; i < w->n_active; i++) {
        struct rtudp_chan *c = w->active[i];
        if (c->tx_timer_ns <= now)
            c->tx_timer_ns = c->proto->tx_timer ? c->proto->tx_timer(w, c, now)
                                                : RTUDP_PROTO_NEVER;
    }
}

static int64_t next_timer(const struct rtudp_worker *w)
{
    int64_t next = rtudp_timerq_next_deadline(&w->tq);
    for (uint32_t i = 0; i < w->n_active; i++)
        if (w->active[i]->tx_timer_ns < next)
            next = w->active[i]->tx_timer_ns;
    return next;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * This process's CPU time (both threads: the RT throttle counts them together).  The
 * clock is a system call, not vDSO, so it is read at most every CPU_READ_EVERY_NS;
 * in between the estimate assumes the worker was busy all the time.  A window that
 * starts on an estimate may undercount by up to that period (1 ms of 20: the cap of
 * 85 % stays below the throttle's 95 %).
 */
static int64_t process_cpu_ns(struct rtudp_worker *w, int64_t now)
{
    if (w->cpu_read_at && now - w->cpu_read_at < CPU_READ_EVERY_NS && now >= w->cpu_read_at)
        return w->cpu_at_read + (now - w->cpu_read_at);
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    w->cpu_read_at = now;
    w->cpu_at_read = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return w->cpu_at_read;
}

/* spin to `until` (a deadline within the margin); stops early if a record comes.
 * No PAUSE in the loop: on a VM a run of PAUSEs is what the CPU's pause-loop exiting
 * takes for a waiting spinlock, an exit to the host that may run something else
 * meanwhile; the clock read paces the loop instead. */
static void spin_to(struct rtudp_worker *w, int64_t now, int64_t until, int bridge)
{
    int64_t start = now;
    while (now < until) {
        if (any_readable(w))
            break;
        int64_t prev = now;
        now = rtudp_now_ns();
        if (w->demoted && now - prev > w->demoted_gap)
            w->demoted_gap = now - prev;
    }
    rtudp_spin_used(&w->spin, now - start);
    if (w->demoted && now > start)
        w->spin_other_ns += (uint64_t)(now - start);
    if (bridge && now > start)
        w->bridge_ns += (uint64_t)(now - start); /* of the same spin: never more */
}

/*
 * May the thread spin `margin` before a deadline?  At SCHED_FIFO within the budget
 * and the CPU cap; past the cap, what budget is left is spun at SCHED_OTHER (sched.c),
 * until the next window brings the thread back to SCHED_FIFO.
 *
 * A `bridge` (a gap to the deadline about as short as a sleep's CPU cost) is spun
 * budget or not, within the cap; only a budgeted one may go on at SCHED_OTHER past the
 * cap.  An unbudgeted one there sets `capped`: the thread sleeps in short chunks
 * instead.  Why: at SCHED_OTHER any task that shares the CPU may take it for a whole
 * slice, milliseconds (seen: the demo's reader, p99 2.3 ms), where a chunked sleep
 * at SCHED_FIFO gives it the CPU in pieces and takes it back on time.
 */
static int may_spin(struct rtudp_worker *w, int64_t now, int64_t margin, int bridge)
{
    w->capped = 0;
    rtudp_w_rt_check(w, now);
    int64_t cpu = process_cpu_ns(w, now);
    int64_t budget = rtudp_spin_room(&w->spin, now, cpu, 0); /* starts a window when due */
    if (w->demoted && w->spin.window_start != w->demoted_window)
        rtudp_w_rt_restore(w); /* a new window: the cap has room again */
    int budgeted = budget >= margin;
    if (!budgeted && !bridge)
        return 0;
    if (!w->rt_policy || w->demoted)
        return 1; /* nothing but the budget bounds an ordinary thread's spin */
    if (rtudp_spin_cpu_room(&w->spin, cpu) >= margin)
        return 1;
    if (budgeted && rtudp_w_rt_demote(w, now, w->spin.window_start) == 0)
        return 1;
    w->capped = bridge;
    return 0;
}

/*
 * The RT cap bounds all of a real-time worker's CPU time in a window, not only its
 * spinning: a worker with more work than its CPU (a flood of sends, or a submitter
 * that queued them after their deadlines) would otherwise hold the CPU at SCHED_FIFO
 * until the kernel's RT throttle or fair server took it away (seen: 500,000 late
 * packets sent back to back).  Past the cap it sleeps in CAPPED_SLEEP_NS pieces, work
 * or not, until the window ends.  A plain clock sleep: a wait on the bell would end at
 * once with records waiting in a ring.  A demoted thread is an ordinary task: no cap.
 */
static int over_rt_cap(struct rtudp_worker *w, int64_t now)
{
    if (!w->rt_policy || w->demoted)
        return 0;
    int64_t cpu = process_cpu_ns(w, now);
    /* starts a new window when due; what the budget has left of it */
    int64_t budget = rtudp_spin_room(&w->spin, now, cpu, 0);
    if (rtudp_spin_cpu_room(&w->spin, cpu) > 0)
        return 0;
    /* a pool whose budget pays for spinning past the cap goes on at SCHED_OTHER
     * (sched.c: the CPU still serves others; back at SCHED_FIFO next window) */
    return !(budget > 0 && rtudp_w_rt_demote(w, now, w->spin.window_start) == 0);
}

static void capped_sleep(struct rtudp_worker *w, int64_t now)
{
    int64_t until = now + CAPPED_SLEEP_NS;
    struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
           !rtudp_w_signalled)
        ;
    w->capped_sleeps++;
}

static void send_due(struct rtudp_worker *w, int64_t now)
{
    struct rtudp_timer due[POP_MAX];
    uint32_t idx[POP_MAX];
    uint8_t taken[POP_MAX];
    for (;;) {
        if (w->backoff_until > now)
            return;
        uint32_t n = rtudp_timerq_pop_due(&w->tq, now, due, POP_MAX);
        if (!n)
            return;
        memset(taken, 0, n);
        for (uint32_t i = 0; i < n; i++) {
            if (taken[i])
                continue;
            uint32_t ch = due[i].channel, k = 0;
            for (uint32_t j = i; j < n; j++)
                if (!taken[j] && due[j].channel == ch) {
                    taken[j] = 1;
                    idx[k++] = j;
                }
            struct rtudp_chan *c = ch < RTUDP_MAX_CHANNELS ? w->chans[ch] : NULL;
            if (c) /* a removed channel's timers were dropped with it */
                send_group(w, c, due, idx, k, now);
        }
        if (n < POP_MAX)
            return;
        /* more due than one batch: a backlog; the loop's top keeps it under the RT cap */
        if (over_rt_cap(w, rtudp_now_ns()))
            return;
    }
}

void rtudp_tx_run(struct rtudp_worker *w)
{
    struct rtudp_worker_slot *me = w->me;
    while (!w->exiting && !rtudp_w_signalled) {
        bump(&me->loops, 1);
        int64_t now = rtudp_now_ns();
        if (now >= w->next_tick) {
            rtudp_w_tick(w, now);
            rtudp_w_poll_commands(w);
            if (w->exiting)
                break;
        }
        /* past the cap: a short sleep, then what is due (read, sent), and round again */
        int capped = over_rt_cap(w, now);
        if (capped) {
            if (rtudp_rx_held(&w->rx)) {
                rtudp_rx_poll(&w->rx); /* it still reads, every CAPPED_SLEEP_NS */
                w->rx_turns++;
            }
            capped_sleep(w, now);
        }
        for (uint32_t i = 0; i < w->n_active; i++) {
            struct rtudp_chan *c = w->active[i];
            if (c->sends && !c->tx_broken)
                consume(w, c, now);
        }
        now = rtudp_now_ns();
        send_due(w, now);
        run_timers(w, now);
        if (capped)
            continue;

        /* what comes next: a timer (maybe spun for), or only a timeout */
        int64_t target = next_timer(w);
        int64_t other = w->next_tick;
        for (uint32_t i = 0; i < w->n_active; i++) {
            struct rtudp_chan *c = w->active[i];
            if (c->sends && c->stamps.len) {
                int64_t by = stamps_read_by(c);
                if (by <= now || target - now > STAMP_HOLD_NS) {
                    read_stamps(c, now);
                    by = stamps_read_by(c);
                }
                if (by < other)
                    other = by;
            }
        }
        if (w->backoff_until > now && target < w->backoff_until)
            target = w->backoff_until;
        if (any_readable(w))
            continue;
        now = rtudp_now_ns();
        if (target <= now)
            continue;
        int64_t margin = w->spin.margin_ns;
        /*
         * Spin only if the whole spin fits the budget; else sleep to the deadline.  But a
         * gap about as short as a sleep's CPU cost is bridged by spinning whatever the
         * budget says: on a VM the thread is charged that much for each wake-up
         * (measured on a 2-vCPU VM: a 20 us sleep at SCHED_FIFO cost 18 us of CPU and
         * woke 18 us late), so sleeping such a gap saves nothing and misses the deadline.
         * Without this a worker at 50 kpps spent all its CPU in wake-ups, at SCHED_FIFO,
         * until the RT throttle stopped it for 50 ms.
         */
        int bridge = rtudp_spin_bridges(&w->spin, target - now);
        int spin_ok = may_spin(w, now, bridge ? target - now : margin, bridge);
        if (!spin_ok && bridge)
            w->spin.over_budget++;
        int64_t park_until = spin_ok ? target - margin : target;
        if (w->capped && park_until < now + CAPPED_SLEEP_NS) {
            park_until = now + CAPPED_SLEEP_NS;
            w->capped_sleeps++;
        }
        int timer_wake = 1;
        if (other < park_until) {
            park_until = other;
            timer_wake = 0;
        }
        if (park_until > now) {
            if (park_until - now >= RX_KEEP_NS)
                rtudp_rx_give(&w->rx); /* a long sleep: the RX thread does the RX work */
            /* a park into the next window ends at SCHED_FIFO, so the wake-up preempts */
            if (w->demoted && park_until - w->spin.window_start >= w->spin.window_ns)
                rtudp_w_rt_restore(w);
            bump(&me->sleeps, 1);
            /* producers need not wake us for packets due at or after `target`: we
             * wake before it and drain the rings first (see notify_consumer) */
            store_relaxed(&me->bell.sleeper_deadline_ns, target);
            /* what a sleep costs, now and then (reading a thread's CPU time is a
             * system call) */
            int sample = timer_wake && (++w->sleeps_seen % SLEEP_SAMPLE_EVERY) == 0;
            int64_t cpu0 = sample ? thread_cpu_ns() : 0;
            int rc = rtudp_bell_wait(&me->bell, wake_ready, w, park_until, 0);
            int64_t woke = rtudp_now_ns();
            if (rc == RTUDP_ETIMEDOUT && timer_wake) {
                rtudp_spin_wake(&w->spin, woke - park_until);
                if (sample)
                    rtudp_spin_sleep_cost(&w->spin, thread_cpu_ns() - cpu0);
            }
            if (rc == RTUDP_OK && rtudp_w_cmd_ready(w))
                rtudp_w_poll_commands(w); /* the supervisor posts and rings after each */
            continue;
        }
        if (!timer_wake)
            continue; /* the tick is due: the top of the loop does it */
        /* A bridged gap: this thread is awake anyway, so it does the RX work (a turn
         * without waiting), and the RX thread sleeps: a datagram then costs no wake-up,
         * which on a VM costs ~10 us of CPU.  It takes the work at once from an RX
         * thread waiting on its sockets; one in the middle of a turn hands over at its
         * end, which a yield lets come (both threads have the same priority). */
        if (bridge && spin_ok && w->n_receiving) {
            if (rtudp_rx_take(&w->rx)) {
                rtudp_rx_poll(&w->rx);
                w->rx_turns++;
            } else
                sched_yield();
        }
        if (spin_ok)
            spin_to(w, rtudp_now_ns(), target, bridge);
    }
}
