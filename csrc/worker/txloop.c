/*
 * txloop.c - the TX thread (the process's main thread): take records from the
 * sending channels' TX rings into the timer queue (through the channel's impairment,
 * impair_apply.c, when it has one: lost, duplicated, corrupted, held), park on the worker's doorbell
 * until shortly before the next deadline, spin the rest, and have what is due sent
 * (txsend.c: one sendmmsg per channel; ring space is freed only once a packet has
 * left).  Between turns it serves the command socket and the liveness tick
 * (control.c).
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

#include "readyset.h"
#include "txfault.h"
#include "worker.h"

#define POP_MAX RTUDP_W_POP_MAX     /* timers taken per pop (and per sendmmsg at most) */
#define DEMOTED_POP 32              /* ... while demoted: short for the guard (send_due) */
#define CAPPED_POP 8                /* ... past the RT cap, per capped sleep */
#define CONSUME_BEAT_EVERY 128      /* records read between two beats (guard.h) */
#define READ_MAX 1024               /* records read per channel per loop: send in between */
#define CONSUME_LOOK 16             /* channels read between two looks at the clock */
#define TQ_MIN 1024
/* the TX thread keeps the RX work over sleeps shorter than this (datagrams wait in
 * the socket meanwhile, stamped by the kernel); over longer ones the RX thread has it,
 * and the idle poller keeps the CPU from halting for long (idlepoller.h): a halt as
 * short as this wakes almost on time, a longer one does not (docs/measurements.md) */
#define RX_KEEP_NS 200000LL
/* TX stamps are read in batches, each read being a system call: when a send leaves a
 * batch of them waiting (txsend.c), before a park longer than STAMP_HOLD_NS, and at
 * least every STAMP_HOLD_NS while any waits (a socket's error queue holds a few hundred
 * stamps); w->stamp_reads says which channels are to be read when */
#define STAMP_HOLD_NS RTUDP_W_STAMP_HOLD_NS
/* ... and while deadlines are dense, those to be read within this long are read at
 * any wake-up, so that reads ride on the wake-ups for deadlines rather than each
 * costing one of their own */
#define STAMP_EARLY_NS (STAMP_HOLD_NS / 2)
/* ... until this long before the thread is to park for the next deadline */
#define STAMP_GUARD_NS 30000LL
/* due timers taken from the heaps in one go (each channel's at most once a turn) */
#define TIMERS_MAX 256

int rtudp_tx_init(struct rtudp_worker *w)
{
    rtudp_pacer_init(&w->pacer, rtudp_now_ns());
    rtudp_chanheap_init(&w->timers);
    rtudp_chanheap_init(&w->standby_timers);
    rtudp_chanheap_init(&w->stamp_reads);
    return rtudp_timerq_init(&w->tq, TQ_MIN);
}

void rtudp_tx_free(struct rtudp_worker *w)
{
    rtudp_pacer_free(&w->pacer);
    rtudp_chanheap_free(&w->timers);
    rtudp_chanheap_free(&w->standby_timers);
    rtudp_chanheap_free(&w->stamp_reads);
    rtudp_timerq_free(&w->tq);
}

/* the guard watches only a demoted thread (guard.h): a beat, and its clock read, only
 * then */
static void beat(struct rtudp_worker *w)
{
    if (w->pacer.demoted)
        rtudp_guard_beat(&w->pacer.guard, rtudp_now_ns());
}

/* a producer marked a channel since the last look (readyset.h): its ring has records */
static int any_readable(const struct rtudp_worker *w)
{
    return rtudp_ready_any(w->ready);
}

/* a resting worker's RX thread read datagrams and cleared `rest` (rxloop.c, note_work) */
static bool rest_ended(const struct rtudp_worker *w)
{
    return w->resting && !atomic_load_explicit(&w->rx.rest, memory_order_relaxed);
}

static bool wake_ready(const void *ctx)
{
    const struct rtudp_worker *w = ctx;
    return rtudp_w_signalled || any_readable(w) || rtudp_w_cmd_ready(w) ||
           rtudp_w_prepared_ready(w) || rtudp_w_handoff_ready(w) ||
           load_acquire(&w->me->async_posted) != w->async_seen || rest_ended(w);
}

/* TX ring -> in-flight tracker + timer queue; 1 if records are left for another turn.
 * A record due before in_time_by came too late to be sent on time (its lateness is the
 * submitter's: rtudp_tx_in_time_by) */
static int consume(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now, int64_t in_time_by)
{
    int left = 1;
    uint64_t taken = 0, immediate = 0, late = 0;
    /* records before it were counted by the worker that took them first */
    uint64_t counted_to = load_relaxed(&c->block->tx_counted_to);
    for (int k = 0; k < READ_MAX; k++) {
        if (k % CONSUME_BEAT_EVERY == CONSUME_BEAT_EVERY - 1)
            beat(w);
        uint64_t before = c->cursor;
        struct rtudp_tx_record *rec;
        uint32_t len;
        int rc = rtudp_mpsc_next(&c->tx, &c->cursor, &rec, &len);
        if (rc == RTUDP_EMPTY) {
            left = 0;
            break;
        }
        if (rc != RTUDP_OK) {
            rtudp_tx_fault(c, "corrupt", c->cursor);
            left = 0;
            break;
        }
        uint64_t pos = c->cursor - align8(sizeof *rec + len);
        uint32_t slot;
        if (rtudp_inflight_push(&c->inflight, pos, c->cursor, &slot) != RTUDP_OK) {
            c->cursor = before; /* cannot happen (sized to the ring); read it again later */
            break;
        }
        int64_t asked = rec->send_at_ns, at = asked;
        int count = pos >= counted_to;
        if (at <= now) {
            /* 0 = now: the drain time, so a "now" never jumps ahead of packets already
             * late; a past deadline stays the timer's key, so what a stall made late
             * still leaves in deadline order, all of it at once */
            immediate += count;
            late += count && asked != 0;
            at = asked ? asked : now;
        }
        struct rtudp_timer t = {.send_at_ns = at, .asked_ns = asked ? asked : at,
                                .channel = c->slot, .slot = slot,
                                .ring_pos = pos, .payload = (const uint8_t *)(rec + 1),
                                .len = len, .flags = rec->flags,
                                .arrived_late = rtudp_tx_arrived_late(asked, in_time_by)};
        int kr = c->proto->tx_record ? c->proto->tx_record(c, rec, len, now, &t) : 0;
        if (kr != 0) {
            /* the kind took it (a request, not a datagram) or refused it: freed, never
             * sent; a refusal is counted */
            rtudp_mpsc_mark_sent(&c->tx, pos);
            rtudp_inflight_done_at(&c->inflight, slot, pos);
            if (kr != RTUDP_PROTO_TAKEN)
                bump(&c->block->tx_errors, 1);
            else
                rtudp_mpsc_account(&c->tx, 1, len);
        } else if (rtudp_impair_tx_queue(w, c, &t, now) != RTUDP_OK) {
            /* cannot happen (reserved per channel); drop rather than wedge the ring */
            rtudp_inflight_done_at(&c->inflight, slot, pos);
            bump(&c->block->tx_errors, 1);
        }
        taken += count;
    }
    if (c->cursor > counted_to)
        store_relaxed(&c->block->tx_counted_to, c->cursor);
    if (taken) {
        bump(&c->block->tx_requested, taken);
        if (immediate)
            bump(&c->block->tx_immediate, immediate);
        if (late)
            bump(&c->block->tx_late, late);
    }
    /* records the kind took or refused, the ones the impairment lost, padding the
     * cursor stepped over: freed */
    rtudp_tx_release(c);
    return left;
}

/* up to max channels whose time in h has come, taken out of it (each once a turn,
 * however often its time comes again in it): how many */
static uint32_t take_due(struct rtudp_chanheap *h, int64_t now, struct rtudp_chan **out,
                         uint32_t max, size_t member)
{
    uint32_t n = 0;
    while (n < max && rtudp_chanheap_next(h) <= now) {
        struct rtudp_chanheap_node *node = rtudp_chanheap_first(h);
        out[n++] = (struct rtudp_chan *)((char *)node - member);
        rtudp_chanheap_set(h, node, RTUDP_CHANHEAP_NONE);
    }
    return n;
}

/* whether channel c's kind timer may run ahead with the group of deadlines now being
 * sent: its kind lets it lead (timer_may_lead) and it has not run in this group (it
 * keeps its own spacing) */
static bool timer_joins_group(const struct rtudp_worker *w, const struct rtudp_chan *c)
{
    return c->timer_may_lead && c->tx_group != w->tx_group;
}

/* the kinds' own timers (e.g. Netflux's cycle) that have come, and the sends their
 * impairment held that are due (w->timers, w->standby_timers): how many serving kind
 * timers ran (a standby's look is no deadline of this worker's own, and runs only by
 * the clock).  By `upto` only for a timer that joins the group (timer_joins_group);
 * the rest run by the clock they are given (UDT's ACKs, a standby's step-in), and held
 * sends leave at their time */
static uint32_t run_timers(struct rtudp_worker *w, int64_t now, int64_t upto)
{
    struct rtudp_chan *due[TIMERS_MAX];
    uint32_t ran = 0;
    uint32_t n = take_due(&w->timers, upto, due, TIMERS_MAX, offsetof(struct rtudp_chan, timer_node));
    n += take_due(&w->standby_timers, now, due + n, TIMERS_MAX - n,
                  offsetof(struct rtudp_chan, standby_node));
    for (uint32_t i = 0; i < n; i++) {
        struct rtudp_chan *c = due[i];
        int64_t clock = timer_joins_group(w, c) ? upto : now; /* a standby never leads */
        if (c->tx_timer_ns <= clock) {
            c->tx_group = w->tx_group;
            ran += !c->standby;
            c->tx_timer_ns = c->proto->tx_timer ? c->proto->tx_timer(w, c, clock)
                                                : RTUDP_PROTO_NEVER;
        }
        if (c->tx_hold.n && rtudp_holdq_next_due(&c->tx_hold) <= now) {
            c->tx_group = w->tx_group; /* it sends in this group */
            rtudp_tx_send_held(w, c, now);
        }
        rtudp_chan_rekey(w, c); /* one taken ahead of its time goes back */
    }
    return ran;
}

/* the next deadline spun for: timed sends, the kinds' timers, held sends (a standby's
 * timer is not one: decide waits for it with a plain timeout, never a spin, since a
 * standby steps in only for a cycle already late and a spin would cost this CPU's
 * budget for it) */
static int64_t next_deadline(const struct rtudp_worker *w)
{
    int64_t next = rtudp_timerq_next_deadline(&w->tq);
    int64_t kinds = rtudp_chanheap_next(&w->timers);
    return kinds < next ? kinds : next;
}

/* spin to `until` (a deadline within the margin): the clock it got there at, or 0 if a
 * record came first.  The rings are looked at after each clock read, so whatever was
 * committed by the time returned has been seen: sent with it, in deadline order.  The
 * spin counts in the budget and spin_ns (and, a bridge's, in bridge_ns: the same time).
 * No PAUSE in the loop: on a VM a run of PAUSEs is what the CPU's pause-loop exiting
 * takes for a waiting spinlock, an exit to the host that may run something else
 * meanwhile; the clock read paces the loop instead. */
static int64_t spin_to(struct rtudp_worker *w, int64_t now, int64_t until, int bridge)
{
    int64_t start = now, reached = 0;
    for (;;) {
        if (any_readable(w))
            break;
        w->look_ns = now; /* nothing waited at this clock: what comes, came after it */
        if (now >= until) {
            reached = now;
            break;
        }
        int64_t prev = now;
        now = rtudp_now_ns();
        rtudp_pacer_spin_step(&w->pacer, prev, now);
    }
    rtudp_pacer_spun(&w->pacer, start, now, bridge);
    return reached;
}

/*
 * The RX work in a turn of this thread (it holds it: rtudp_rx_take), coalesced as the
 * RX thread's waits are (rxloop.c, rx_coalesce): after a turn that read two or more
 * receives, which says they come faster than the turns, the next turn waits until the
 * pool's coalesce_ns (--rx-coalesce-us, 0: never) has passed since it.  Each turn is an
 * epoll_pwait2 and a recvmmsg a channel with data: uncoalesced, a worker that sends
 * and receives at a high rate takes a turn in nearly every gap between its sends, for
 * one datagram each (docs/measurements.md at d3e5a6a, "RX coalescing").  A turn that read one
 * or none ends the wait, so a request and its reply, or a slow stream, never wait.  The
 * kernel stamped each datagram when it came: arrival times stay exact.
 */
static void rx_turn_here(struct rtudp_worker *w, int64_t now)
{
    if (rtudp_rx_turn_waits(w->pacer.rx_turn_got, now - w->pacer.rx_turn_at, w->rx.coalesce_ns))
        return;
    w->pacer.rx_turn_got = rtudp_rx_poll(&w->rx);
    w->pacer.rx_turn_at = now;
    w->pacer.rx_turns++;
}

/* past the cap: a sleep, or the next deadline first if it is near (spin.h) */
static void capped_sleep(struct rtudp_worker *w, int64_t now)
{
    int64_t gap = next_deadline(w) - now;
    int64_t len = rtudp_pacer_capped_sleep_ns(&w->pacer, gap);
    if (!len) {
        if (gap > 0)
            spin_to(w, now, now + gap, 0); /* to the deadline; the loop sends it */
        return;
    }
    int64_t until = now + len;
    struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
           !rtudp_w_signalled)
        ;
    rtudp_pacer_slept(&w->pacer, len);
}

/* the most sent in one go: a whole POP_MAX batch of a backlog takes long on a VM.
 * Demoted, the guard's timer way must hear from the thread more often than that
 * (guard.h, RTUDP_GUARD_NS); past the pace, one batch a capped sleep */
static uint32_t batch_max(const struct rtudp_worker *w, int capped)
{
    return capped ? CAPPED_POP : w->pacer.demoted ? DEMOTED_POP : POP_MAX;
}

/* records of a channel that sent in this group already, popped with a coalesced
 * deadline they tie with: back in the queue, for their own time */
static void requeue(struct rtudp_worker *w, const struct rtudp_timer *due, const uint32_t *idx,
                    uint32_t k)
{
    for (uint32_t j = 0; j < k; j++)
        rtudp_timerq_push(&w->tq, &due[idx[j]]); /* just popped: there is room */
}

/* the channels of due[0..n), asked for all at once before the first is sent: the
 * later ones' misses then overlap the earlier ones' sends (rtudp_tx_prefetch) */
static void prefetch_due(const struct rtudp_worker *w, const struct rtudp_timer *due, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct rtudp_chan *c =
            due[i].channel < RTUDP_MAX_CHANNELS ? w->chans[due[i].channel] : NULL;
        if (c)
            rtudp_tx_prefetch(c, &due[i]);
    }
}

/* the timed sends due by `upto` (now, or a coalesced deadline just ahead), sent now:
 * how many were sent.  Ahead of now, a channel that sent in this group keeps its
 * records for their own time (a stream keeps its spacing) */
static uint32_t send_due(struct rtudp_worker *w, int64_t now, int64_t upto, int capped)
{
    struct rtudp_timer due[POP_MAX];
    uint32_t idx[POP_MAX];
    uint8_t taken[POP_MAX];
    uint32_t total = 0;
    for (;;) {
        if (w->backoff_until > now)
            return total;
        uint32_t max = batch_max(w, capped);
        uint32_t n = rtudp_timerq_pop_due(&w->tq, upto, due, max);
        if (!n)
            return total;
        beat(w);
        memset(taken, 0, n);
        prefetch_due(w, due, n);
        rtudp_histbatch_begin(&w->late_batch); /* the sends first, then their lateness */
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
            if (c && upto > now && c->tx_group == w->tx_group) {
                requeue(w, due, idx, k);
                continue;
            }
            if (c) { /* a removed channel's timers were dropped with it */
                c->tx_group = w->tx_group;
                total += k;
                rtudp_tx_send_group(w, c, due, idx, k, now);
                rtudp_chan_rekey(w, c); /* its TX stamps wait now */
            }
        }
        rtudp_histbatch_end(&w->late_batch);
        if (n < max || capped)
            return total;
        /* more due than one batch: a backlog; the loop's top keeps it under the RT cap */
        if (rtudp_pacer_capped(&w->pacer, rtudp_now_ns()))
            return total;
    }
}

/* everything due: timed sends and the kinds' timers that may lead by `upto` (now, or a
 * coalesced deadline just ahead), the other kinds' timers and sends the impairment
 * held by now.  How many timed sends and kind timers went */
static uint32_t serve_due(struct rtudp_worker *w, int64_t now, int64_t upto, int capped)
{
    uint32_t n = send_due(w, now, upto, capped);
    return n + run_timers(w, now, upto);
}

/* woken early for a deadline after a long park (warmup.h): spin to `lead` before it,
 * push one datagram through the send path, spin the rest, send what is due, and read
 * the datagrams back once a batch waits.  The warm-up comes last before the deadline,
 * not on waking: the margin can be the spin's largest, and a path warmed that early
 * cools again by the send (docs/measurements.md at d3e5a6a, "A cold send path after a park").  A
 * wake so late that less than the lead is left skips it: it could make the send late
 * itself */
static void warm_and_spin(struct rtudp_worker *w, int64_t target)
{
    int64_t warm_at = target - w->pacer.warmup.lead_ns, now = rtudp_now_ns();
    if (now <= warm_at) {
        if (!spin_to(w, now, warm_at, 0))
            return; /* a record came: the loop's top takes it, and spins again */
        rtudp_warmup_run(&w->pacer.warmup);
    }
    int64_t reached = spin_to(w, rtudp_now_ns(), target, 0);
    if (reached)
        serve_due(w, reached, reached, 0);
    if (w->pacer.warmup.unread >= RTUDP_WARMUP_DRAIN_BATCH)
        rtudp_warmup_drain(&w->pacer.warmup);
}

/* the liveness tick and the commands, when the tick is due: 0 once told to exit */
static int tick(struct rtudp_worker *w, int64_t now)
{
    if (w->pacer.demoted)
        rtudp_guard_beat(&w->pacer.guard, now);
    if (now < w->next_tick)
        return 1;
    /* real-time again first: a command may take ms (a channel's ADD faults its
     * buffers in), silence the guard would take for another task's */
    rtudp_pacer_rt_restore(&w->pacer);
    rtudp_w_tick(w, now);
    rtudp_w_take_prepared(w);
    rtudp_w_poll_commands(w);
    return !w->exiting;
}

/* past the cap: a short sleep, then what is due (read, sent), and round again */
static int capped_turn(struct rtudp_worker *w, int64_t now)
{
    int capped = rtudp_pacer_capped(&w->pacer, now);
    if (capped) {
        if (rtudp_rx_held(&w->rx))
            rx_turn_here(w, now); /* it still reads, in capped turns too */
        capped_sleep(w, now);
    } else {
        rtudp_pacer_uncapped(&w->pacer);
    }
    return capped;
}

struct consume_turn {
    struct rtudp_worker *w;
    int64_t now;
    int64_t in_time_by;             /* rtudp_tx_in_time_by */
    int64_t stop_at;                /* the next deadline: read no further once it is due */
    uint32_t read;                  /* channels read this turn */
    int left;                       /* a channel kept records for another turn */
    int took;                       /* a channel was read: the worker has work */
};

/* a channel a producer marked: its TX ring read up to what was committed by `now`
 * (marked again if a turn's share was left in it).  False, reading nothing, once the
 * turn's next deadline has come (looked at every CONSUME_LOOK channels): the marks
 * from this one on wait for the next turn, after what is due has gone.  A burst of
 * top-ups to thousands of channels, queued far ahead, then does not hold up the sends
 * due meanwhile; each channel's records are still read in ring order. */
static bool consume_marked(void *ctx, uint32_t slot)
{
    struct consume_turn *t = ctx;
    if (t->read && t->read % CONSUME_LOOK == 0 && rtudp_now_ns() >= t->stop_at) {
        t->left = 1;
        return false;
    }
    struct rtudp_chan *c = slot < RTUDP_MAX_CHANNELS ? t->w->chans[slot] : NULL;
    if (!c || !c->sends || c->tx_broken)
        return true; /* gone, or not read: a stale mark */
    t->took = 1;
    t->read++;
    if (consume(t->w, c, t->now, t->in_time_by)) {
        rtudp_ready_mark(t->w->ready, slot);
        t->left = 1;
    }
    rtudp_chan_rekey(t->w, c); /* the kind may have set its timer from a record */
    return true;
}

/* the TX rings producers marked, read up to what was committed by `now`, until the next
 * deadline comes (consume_marked) */
static void consume_all(struct rtudp_worker *w, int64_t now)
{
    struct consume_turn t = {w, now, rtudp_tx_in_time_by(w->look_ns, w->parked_to_ns,
                                                         w->parked_rung_ns, now,
                                                         w->pacer.spin.margin_ns),
                             next_deadline(w), 0, 0, 0};
    rtudp_ready_take(w->ready, consume_marked, &t);
    if (t.took)
        rtudp_w_work(w, now);
    /* what was marked by now is read, unless a channel kept some (READ_MAX) or the turn
     * stopped for a deadline: those came before now, and are judged by the look before */
    if (!t.left)
        w->look_ns = now;
}

/* the earlier of `other` and when the next TX stamps are to be read (with a lateness
 * budget, at the budget's wake-up after that: a read rides a wake-up for sends, or at
 * least costs no wake-up of its own) */
static int64_t before_stamp_reads(const struct rtudp_worker *w, int64_t other)
{
    int64_t by = rtudp_chanheap_next(&w->stamp_reads);
    if (w->pacer.lateness_ns > 0 && by != RTUDP_CHANHEAP_NONE)
        by = rtudp_pacer_late_wake(&w->pacer, by);
    return by < other ? by : other;
}

/* the TX stamps that are to be read now, or (all that wait) before a park longer than
 * STAMP_HOLD_NS to `target`, read; while deadlines are dense, also those to be read
 * within STAMP_EARLY_NS, one channel at a time while the clock is before `stop_at`
 * (reads' system calls must not make the next sends late).  The earlier of `other` and
 * when the rest are to be read by */
static int64_t read_stamps(struct rtudp_worker *w, int64_t now, int64_t target, int64_t other,
                           int64_t stop_at)
{
    /* every stamp that waits is to be read by now + STAMP_HOLD_NS at the latest; one
     * read at `now` puts its channel back at exactly that, so it is not read twice */
    int long_park = target - now > STAMP_HOLD_NS;
    int64_t upto = long_park ? now + STAMP_HOLD_NS - 1 : now;
    struct rtudp_chan *due[TIMERS_MAX];
    uint32_t n;
    do {
        n = take_due(&w->stamp_reads, upto, due, TIMERS_MAX,
                     offsetof(struct rtudp_chan, stamp_node));
        for (uint32_t i = 0; i < n; i++) {
            rtudp_tx_read_stamps(due[i], now);
            beat(w);
        }
        /* back in (the stamps still awaited) only after the batch: each is read once */
        for (uint32_t i = 0; i < n; i++)
            rtudp_chan_rekey(w, due[i]);
    } while (n == TIMERS_MAX);
    if (!long_park && rtudp_pacer_dense(&w->pacer, now)) {
        n = 0;
        while (n < TIMERS_MAX && rtudp_now_ns() < stop_at &&
               take_due(&w->stamp_reads, now + STAMP_EARLY_NS, &due[n], 1,
                        offsetof(struct rtudp_chan, stamp_node))) {
            rtudp_tx_read_stamps(due[n++], now);
            beat(w);
        }
        for (uint32_t i = 0; i < n; i++) /* as above: each is read once */
            rtudp_chan_rekey(w, due[i]);
    }
    return before_stamp_reads(w, other);
}

/* whether the first deadline, at `target`, is a kind's timer that may lead and joins
 * this group (timer_joins_group): no timed send is due with it */
static int first_timer_may_lead(struct rtudp_worker *w, int64_t target)
{
    const struct rtudp_timer *rec = rtudp_timerq_peek(&w->tq);
    if (rec && rec->send_at_ns <= target)
        return 0;
    struct rtudp_chanheap_node *node = rtudp_chanheap_first(&w->timers);
    if (!node || rtudp_chanheap_next(&w->timers) != target)
        return 0; /* nothing waits: target is no deadline of these heaps */
    struct rtudp_chan *c = (struct rtudp_chan *)((char *)node - offsetof(struct rtudp_chan, timer_node));
    return c->tx_timer_ns == target && timer_joins_group(w, c);
}

/* whether the first deadline, at `target`, is a timed send that may join the group of
 * deadlines just sent: of a channel that has not sent in the group (a stream keeps its
 * own spacing), with no kind timer or held send due with it (those run by the clock,
 * or lead: first_timer_may_lead) */
static int record_joins_group(struct rtudp_worker *w, int64_t target)
{
    const struct rtudp_timer *rec = rtudp_timerq_peek(&w->tq);
    if (!rec || rec->send_at_ns != target || rtudp_chanheap_next(&w->timers) <= target)
        return 0;
    struct rtudp_chan *c = rec->channel < RTUDP_MAX_CHANNELS ? w->chans[rec->channel] : NULL;
    return c && c->tx_group != w->tx_group;
}

/* with a lateness budget (pacer.c, plan_late): whether the first deadline, at `target`,
 * is a timed send that may wait for the budget's wake-up (*may_be_late); a kind's timer
 * due before that wake-up is waited for instead, by the clock, and the timed sends
 * due by then go with it, within the budget */
static int64_t late_target(struct rtudp_worker *w, int64_t target, int *may_be_late)
{
    if (w->pacer.lateness_ns <= 0 || target == INT64_MAX ||
        rtudp_timerq_next_deadline(&w->tq) != target)
        return target;
    int64_t kinds = rtudp_chanheap_next(&w->timers);
    if (kinds < rtudp_pacer_late_wake(&w->pacer, target))
        return kinds;
    *may_be_late = 1;
    return target;
}

/* decide what comes next: a timer (maybe spun for, or coalesced with what was just due,
 * `after_due`), or only a timeout.  0: nothing to wait for (a record waits, or the
 * deadline has come): the loop goes round again */
static int decide(struct rtudp_worker *w, int64_t now, int after_due, struct rtudp_pace_plan *t)
{
    int64_t target = next_deadline(w);
    int64_t standby = rtudp_chanheap_next(&w->standby_timers);
    int64_t other = w->next_tick;
    /* a deadline, however far, or stamps to read: the worker does not rest */
    if (target != INT64_MAX || standby != INT64_MAX ||
        rtudp_chanheap_next(&w->stamp_reads) != RTUDP_CHANHEAP_NONE)
        rtudp_w_work(w, now);
    /* a standby's look waits for this thread's next deadline when that comes within
     * RTUDP_STANDBY_SLACK_NS of it: one wake-up for both, where many channels' cycles
     * interleave with their standbys' looks (it only matters if a cycle was missed) */
    if (standby < other && target - standby > RTUDP_STANDBY_SLACK_NS)
        other = standby;
    /* a timer that may lead joins a group, and is not spun for when close (pacer.c) */
    t->lead = first_timer_may_lead(w, target);
    t->after_due = after_due && (t->lead || record_joins_group(w, target));
    t->may_be_late = 0;
    if (w->backoff_until > now) {
        if (target < w->backoff_until)
            target = w->backoff_until;
        t->after_due = t->lead = 0; /* a send backoff ends at its time */
    } else {
        target = late_target(w, target, &t->may_be_late);
    }
    t->target = target;
    t->now = now;
    if (rtudp_pacer_joins_group(&w->pacer, t)) {
        /* the group goes on before any stamp is read: a read's system calls would
         * delay its sends by as many as wait; they are read before the next wait */
        other = before_stamp_reads(w, other);
    } else {
        /* before the rings are looked at: a producer that keeps them readable must
         * not keep the stamps of the channels that sent from being read */
        int64_t wake_by = rtudp_pacer_wake_by(&w->pacer, t);
        /* with a lateness budget the park ends a step after target */
        other = read_stamps(w, now, t->may_be_late ? wake_by : target, other,
                            wake_by - STAMP_GUARD_NS);
    }
    if (any_readable(w))
        return 0;
    t->now = rtudp_now_ns();
    if (target <= t->now)
        return 0;
    rtudp_pacer_plan(&w->pacer, other, t);
    return 1;
}

/* ready the park: the RX work handed over for a long one, the CPU kept from halting,
 * real-time for a wake-up in the next window; whether the idle poller runs */
static int before_park(struct rtudp_worker *w, const struct rtudp_pace_plan *t)
{
    struct rtudp_worker_slot *me = w->me;
    int64_t now = t->now, park_until = t->park_until;
    int long_park = park_until - now >= RX_KEEP_NS;
    /* the CPU must not halt, unless the park ends the largest margin before a
     * deadline (spin.h), which holds a halted vCPU's late wake-up (idlepoller.h) */
    int nap = rtudp_spin_park_naps(park_until - now, RX_KEEP_NS, t->timer_wake && t->spin_ok,
                                   t->target - now);
    if (long_park)
        rtudp_rx_give(&w->rx); /* a long sleep: the RX thread does the RX work */
    /* nor while readers read this worker's sockets themselves (direct_recv.h): the
     * naps' timer interrupts then only delay the readers' own wake-ups, which the host
     * ends within its halt polling in a request and its reply; nor while it rests (its
     * poller is stopped: sched.c, rtudp_w_rest) */
    /* nor when the park ends at the lateness budget's wake-up: the budget holds a
     * halted vCPU's wake-up */
    if (nap && !w->resting && !t->late &&
        !atomic_load_explicit(&w->rx.readers_hold, memory_order_relaxed))
        rtudp_idlepoller_open(&w->pacer.poller, park_until);
    else
        nap = 0;
    /* a park into the next window ends at SCHED_FIFO, so the wake-up preempts */
    if (w->pacer.demoted && park_until - w->pacer.spin.window_start >= w->pacer.spin.window_ns)
        rtudp_pacer_rt_restore(&w->pacer);
    bump(&me->sleeps, 1);
    if (w->pacer.demoted)
        rtudp_guard_beat(&w->pacer.guard, park_until); /* silent till then, not lost */
    /* producers need not wake us for packets due at or after `target` (with a
     * lateness budget, a step before the budget's wake-up): we wake in time for them and
     * drain the rings first (see notify_consumer) */
    store_relaxed(&me->bell.sleeper_deadline_ns, rtudp_pacer_sleeper_deadline(&w->pacer, t));
    /* before bell_wait counts this thread a waiter: a producer that rings for this park
     * finds it clear and stamps it */
    store_relaxed(&me->bell.rung_ns, 0);
    /* the next send's memory, fetched while we sleep rather than after the wake-up */
    const struct rtudp_timer *next = rtudp_timerq_peek(&w->tq);
    if (next)
        prefetch_due(w, next, 1);
    return nap;
}

/* act: park on the bell until t->park_until, then what the wake-up calls for */
static void park(struct rtudp_worker *w, const struct rtudp_pace_plan *t)
{
    int nap = before_park(w, t);
    /* what a sleep costs, now and then (reading a thread's CPU time is a
     * system call) */
    int64_t cpu0;
    int sample = rtudp_pacer_sample_sleep(&w->pacer, t->timer_wake, &cpu0);
    int rc = rtudp_bell_wait(&w->me->bell, wake_ready, w, t->park_until, 0);
    int64_t woke = rtudp_now_ns();
    w->look_ns = RTUDP_TX_LOOK_PARKED; /* the bell watched for it: rtudp_tx_in_time_by */
    w->parked_to_ns = t->target;
    w->parked_rung_ns = load_relaxed(&w->me->bell.rung_ns);
    rtudp_pacer_parked(&w->pacer, woke - t->now);
    if (nap)
        rtudp_idlepoller_close(&w->pacer.poller);
    if (rc == RTUDP_ETIMEDOUT && t->timer_wake)
        rtudp_pacer_woke(&w->pacer, woke - t->park_until, sample, cpu0);
    if (rc == RTUDP_OK && rtudp_w_cmd_ready(w)) {
        rtudp_pacer_rt_restore(&w->pacer); /* as for the tick's commands */
        rtudp_w_poll_commands(w); /* the supervisor posts and rings after each */
    }
    /* straight on to the deadline: at the loop's top the rest of the lead could
     * look long enough for another park */
    if (rc == RTUDP_ETIMEDOUT && t->warm)
        warm_and_spin(w, t->target);
}

/* act: no park, so spin to t->target if allowed and send what is due there */
static void spin_and_send(struct rtudp_worker *w, const struct rtudp_pace_plan *t)
{
    /* A bridged gap: this thread is awake anyway, so it does the RX work (a turn
     * without waiting), and the RX thread sleeps: a datagram then costs no wake-up,
     * which on a VM costs real CPU (rxloop.c, rx_coalesce).  It takes the work at
     * once from an RX thread waiting on its sockets; one in the middle of a turn hands
     * over at its end, which a yield lets come (both threads have the same priority). */
    if (t->bridge && t->spin_ok && w->n_receiving && rtudp_pacer_on(&w->pacer, RTUDP_MECH_RX_TURNS)) {
        if (rtudp_rx_take(&w->rx)) {
            rx_turn_here(w, rtudp_now_ns());
            beat(w);
        } else
            sched_yield();
    }
    int64_t reached = t->spin_ok ? spin_to(w, rtudp_now_ns(), t->target, t->bridge) : 0;
    if (reached) {
        /* spun to the deadline: what is due goes now, not after another round of
         * the loop's top (its looks at the clocks and the rings take time, more
         * after a long park with cold caches); the top comes next anyway */
        serve_due(w, reached, reached, 0);
    }
}

void rtudp_tx_run(struct rtudp_worker *w)
{
    struct rtudp_worker_slot *me = w->me;
    int chained = 0; /* a deadline went early since the last wait: what follows may join */
    int waited = 1;  /* the thread parked or spun since the group began: a new one begins */
    while (!w->exiting && !rtudp_w_signalled) {
        bump(&me->loops, 1);
        if (load_acquire(&me->async_posted) != w->async_seen)
            rtudp_chan_answer_waiters(w); /* an event loop registered on a channel */
        if (rtudp_w_prepared_ready(w))
            rtudp_w_take_prepared(w); /* a channel the conductor prepared: in and answered */
        if (rtudp_w_handoff_ready(w))
            rtudp_w_take_over(w); /* a channel another worker let go of: served from now */
        int64_t now = rtudp_now_ns();
        if (rest_ended(w))
            rtudp_w_work(w, now); /* datagrams came while it rested */
        if (!tick(w, now))
            break;
        rtudp_pacer_look_at_share(&w->pacer, now);
        int capped = capped_turn(w, now);
        waited |= capped; /* a capped sleep is a wait */
        /* consume.  The clock first, then the rings: what was committed by `now` is
         * read, and what is due by it leaves in deadline order with what was queued
         * before (a clock read after the rings would let a stall between them send a
         * later deadline ahead of an earlier one committed in the stall) */
        now = rtudp_now_ns();
        consume_all(w, now);
        if (waited) { /* a group is what goes out between two waits */
            w->tx_group++;
            waited = chained = 0;
        }
        int served = serve_due(w, now, now, capped) > 0 || chained;
        if (capped)
            continue;
        /* decide, then act: park, spin to the deadline, or send it now with what was
         * due; a timeout that is already due (the tick) is the loop's top's */
        struct rtudp_pace_plan t;
        if (!decide(w, now, served, &t))
            continue;
        if (t.coalesce) { /* the next deadline is close: it goes now, with what went */
            if (t.after_due) /* (a lone timer that leads makes no group) */
                rtudp_pacer_coalesced(&w->pacer, t.now);
            bump(&me->tx_coalesced, serve_due(w, t.now, t.target, 0));
            chained = 1;
            continue;
        }
        if (t.park_until > t.now || t.timer_wake)
            waited = 1;
        if (t.park_until > t.now)
            park(w, &t);
        else if (t.timer_wake)
            spin_and_send(w, &t);
    }
}
