/*
 * udt_conn.c - a connected UDT socket in the worker: data in (receive buffer, loss
 * detection, NAK), ACK / light ACK / ACK2 and RTT, NAK in and retransmission,
 * message drop by TTL, EXP and keep-alive, shutdown, and sending paced by the
 * congestion control (csrc/udt/udt_cc.c).  libudt's CUDT::processData,
 * processCtrl, packData and checkTimers are the model (docs/udt-core.md says where
 * each rule comes from); tests/c/test_udt_cc.c's simulation is the same logic.
 *
 * Beyond libudt: the periodic NAK is on (a lost retransmission is reported again
 * after max(RTT + 4 RTTVar, nak_floor) instead of waiting for EXP), and an ACK goes
 * out, even a repeated one, when the receive buffer reopened (a client read it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "proto/udt_area.h"
#include "proto/udt_conn.h"
#include "udt/udt_seq.h"
#include "udt/udt_wire.h"
#include "worker.h"

#define PUMP_MAX 64          /* packets one timer call sends at most */
#define NAK_WORDS_MAX 360    /* loss-list words in one NAK (fits 1472 bytes) */
#define EAGAIN_RETRY_US 100  /* socket buffer full: try again then */
#define STUCK_HEAD_GO_BACK 3 /* head resends in a row before all that is stale goes */
/* Pacing in micro-bursts: at short periods the worker wakes at most every
 * PACE_BATCH_US and sends what came due meanwhile (a wake-up costs more than several
 * packets' sends), and a late one catches up at most PACE_CATCHUP_US of its schedule
 * (no burst for time it had nothing to send) */
#define PACE_BATCH_US 50.0
#define PACE_CATCHUP_US 150.0

struct udt_conn *udt_conn_of(const struct udt_ctx *x, uint32_t i)
{
    return (struct udt_conn *)((uint8_t *)rtudp_udt_sock_at(x->a, i) + x->cfg->conn_off);
}

static struct udt_losslist *snd_ll(const struct udt_ctx *x, uint32_t i)
{
    return (struct udt_losslist *)((uint8_t *)udt_conn_of(x, i) +
                                   ((sizeof(struct udt_conn) + 63) & ~(uint64_t)63));
}

static struct udt_losslist *rcv_ll(const struct udt_ctx *x, uint32_t i)
{
    return (struct udt_losslist *)((uint8_t *)snd_ll(x, i) + udt_conn_ll_bytes(x->cfg->buf_pkts));
}

/*
 * The protocol state sits in shared memory, which a client process can scribble
 * on.  Garbage there may break that one connection, never make the worker index out
 * of bounds: before each use, the fields that index arrays or size copies are
 * brought back in range (a loss list whose header is off is emptied: the peer's
 * NAKs and our EXP rebuild it).
 */
/* a bool of shared memory as 0 or 1: any other byte there is a value the type does
 * not have, and loading it as a bool is undefined (read and written as a byte) */
_Static_assert(sizeof(bool) == 1, "bool is one byte");
static void bool_sane(bool *b)
{
    uint8_t v;
    memcpy(&v, b, 1);
    v = v != 0;
    memcpy(b, &v, 1);
}

/* a double of shared memory that is converted to an integer or compared: finite
 * and within [lo, hi] (NaN, infinities, huge values: converting them is undefined) */
static bool double_ok(double v, double lo, double hi) { return v >= lo && v <= hi; }

/* the loss list's ranges are what its code assumes: 31-bit numbers, each range in
 * order and after the one before, all within max_span, count their sum (a range
 * "5..3" would have udt_ll_pop count through 2^31 numbers) */
static bool ll_ranges_ok(const struct udt_losslist *ll)
{
    uint64_t count = 0;
    for (uint32_t j = 0; j < ll->n; j++) {
        struct udt_range r = udt_ll_range(ll, j);
        if (((r.lo | r.hi) & ~UDT_SEQ_MAX) || udt_seq_cmp(r.lo, r.hi) > 0)
            return false;
        if (j > 0 && udt_seq_cmp(udt_ll_range(ll, j - 1).hi, r.lo) >= 0)
            return false;
        count += udt_seq_len(r.lo, r.hi);
    }
    return ll->n == 0 ||
           ((uint64_t)udt_seq_len(udt_ll_range(ll, 0).lo, udt_ll_range(ll, ll->n - 1).hi) <=
                ll->max_span && count == ll->count);
}

void udt_conn_sane(struct udt_ctx *x, uint32_t i)
{
    struct udt_conn *k = udt_conn_of(x, i);
    uint32_t buf = x->cfg->buf_pkts, cap = udt_conn_ll_cap(buf);
    struct udt_losslist *lls[2] = {snd_ll(x, i), rcv_ll(x, i)};
    for (int j = 0; j < 2; j++) {
        struct udt_losslist *ll = lls[j];
        if (ll->cap != cap || ll->max_span != buf || ll->head >= cap || ll->n > cap ||
            !ll_ranges_ok(ll))
            udt_ll_init(ll, cap, buf);
    }
    if (k->aw.head >= UDT_ACKWIN_SIZE || k->aw.n > UDT_ACKWIN_SIZE)
        udt_ackwin_init(&k->aw);
    if (k->pw.arr_pos >= UDT_ARRWIN_SIZE || k->pw.probe_pos >= UDT_PROBEWIN_SIZE)
        udt_pktwin_init(&k->pw, x->now_us);
    if (k->payload == 0 || k->payload > RTUDP_UDT_PAYLOAD_MAX)
        k->payload = RTUDP_UDT_PAYLOAD_MAX;
    bool_sane(&k->tm.full_ack_sent);
    bool_sane(&k->pw.have_probe1);
    bool_sane(&k->hs.rendezvous);
    bool_sane(&k->hs.have_res);
    bool_sane(&k->cc.u.d.slow_start);
    bool_sane(&k->cc.u.d.loss);
    bool_sane(&k->cc.u.lt.startup);
    /* the congestion control's doubles and the pacing clock: restarted when off */
    if (k->cc.kind > UDT_CC_LT || k->cc.u.lt.phase >= UDT_LT_PHASES ||
        !double_ok(k->cc.pkt_period_us, 0.0, 1e12) ||
        !double_ok(k->cc.cwnd, 0.0, 1e9) || !double_ok(k->cc.max_cwnd, 0.0, 1e9) ||
        !double_ok(k->cc.u.d.last_dec_period, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.btl_bw, 0.0, 1e12) || !double_ok(k->cc.u.lt.bw_cur, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.bw_prev, 0.0, 1e12) || !double_ok(k->cc.u.lt.full_bw, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.last_sample, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.loss_base, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.peak_bw, 0.0, 1e12) || !double_ok(k->cc.u.lt.probe_base, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.probe_max, 0.0, 1e12) ||
        !double_ok(k->cc.u.lt.passed, 0.0, 1e12) || !double_ok(k->cc.u.lt.passed_prev, 0.0, 1e12))
        udt_cc_init(&k->cc, x->cfg->cc == RTUDP_UDT_CC_DAIMD ? UDT_CC_DAIMD : UDT_CC_LT,
                    k->res.mss >= UDT_MIN_MSS && k->res.mss <= x->cfg->mss ? k->res.mss
                                                                          : x->cfg->mss,
                    k->peer_fw < buf ? k->peer_fw : buf, k->snd_curr, x->now_us);
    if (!double_ok(k->next_send_us, 0.0, (double)x->now_us + 1e9))
        k->next_send_us = (double)x->now_us;
}

int udt_send_to(struct udt_ctx *x, const struct rtudp_sockaddr *to, const uint8_t *p, int len)
{
    if (len <= 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = rtudp_to_sockaddr(to, &ss);
    if (!sl)
        return -1;
    return rtudp_tx_send_to(x->c, p, (uint32_t)len, rtudp_now_ns(), (struct sockaddr *)&ss, sl);
}

int udt_send_pkt(struct udt_ctx *x, uint32_t i, const uint8_t *p, int len)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    return udt_send_to(x, &s->wrk.peer, p, len);
}

/* send a control packet of len bytes (<= 0: none was built, nothing sent) to socket i's
 * peer, counted in tx_ctrl when it went; 0 when it did (udt_send_pkt's result) */
static int send_ctrl(struct udt_ctx *x, uint32_t i, const uint8_t *out, int len)
{
    int rc = udt_send_pkt(x, i, out, len);
    if (rc == 0)
        bump(&x->a->cnt.tx_ctrl, 1);
    return rc;
}

void udt_moved(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    store_release(&s->wrk.events, load_relaxed(&s->wrk.events) + 1);
    rtudp_bell_ring(&s->bell);
    x->moved = 1;
}

void udt_sock_finish(struct udt_ctx *x, uint32_t i, uint32_t state, uint32_t error)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    if (k->role != UDT_ROLE_NONE && k->role != UDT_ROLE_DONE) {
        uint64_t open = load_relaxed(&x->a->cnt.open_socks);
        store_relaxed(&x->a->cnt.open_socks, open ? open - 1 : 0);
    }
    k->role = state == RTUDP_UDT_CLOSED ? UDT_ROLE_NONE : UDT_ROLE_DONE;
    if (error)
        store_relaxed(&s->wrk.error, error);
    store_release(&s->wrk.state, state);
    if (state == RTUDP_UDT_CLOSED)
        store_release(&s->cli.claim, (uint32_t)RTUDP_UDT_FREE);
    udt_moved(x, i);
}

/* ------------------------------------------------------------ establishing */

void udt_conn_established(struct udt_ctx *x, uint32_t i, const struct udt_hs_result *r)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint32_t buf = x->cfg->buf_pkts;
    uint64_t now = x->now_us;
    k->res = *r;
    k->role = UDT_ROLE_CONNECTED;
    uint32_t payload = r->mss - UDT_MSS_OVERHEAD - UDT_HDR_LEN;
    k->payload = payload < RTUDP_UDT_PAYLOAD_MAX ? payload : RTUDP_UDT_PAYLOAD_MAX;
    k->peer_fw = r->peer_flow_window;
    k->start_us = now;
    k->snd_last_ack = r->isn_send;
    k->snd_curr = udt_seq_dec(r->isn_send);
    uint64_t head = load_acquire(&s->cli.snd_head);
    k->snd_sent = head;
    k->next_send_us = (double)now;
    k->snd_wait = RTUDP_UDT_WAIT_NONE;
    k->snd_progress_us = now;
    k->head_resends = 0;
    k->rate_told = 0;
    k->nak_held = 0;
    k->srtt = 10 * UDT_SYN_US;
    k->srtt_var = k->srtt / 2;
    k->delivery_rate = 16;
    k->bandwidth = 1;
    k->last_ack2_ackno = 0;
    k->rcv_next = r->isn_recv;
    k->rcv_curr = udt_seq_dec(r->isn_recv);
    k->rcv_last_ack = k->rcv_last_ackack = r->isn_recv;
    k->ackno = 0;
    k->next_nak_us = now + x->cfg->nak_floor_us;
    k->last_avail = buf;
    udt_cc_init(&k->cc, x->cfg->cc == RTUDP_UDT_CC_DAIMD ? UDT_CC_DAIMD : UDT_CC_LT, r->mss,
                k->peer_fw < buf ? k->peer_fw : buf, k->snd_curr, now);
    udt_timers_init(&k->tm, 0, x->cfg->broken_us, now);
    udt_ackwin_init(&k->aw);
    udt_pktwin_init(&k->pw, now);
    udt_ll_init(snd_ll(x, i), udt_conn_ll_cap(buf), buf);
    udt_ll_init(rcv_ll(x, i), udt_conn_ll_cap(buf), buf);
    /* slots of an earlier connection of this socket must not count as received */
    for (uint64_t j = 0; j < buf; j++)
        store_relaxed(&rtudp_udt_rcv_slot(x->a, i, j)->tag, (uint64_t)0);
    store_relaxed(&s->wrk.snd_acked, head);
    store_relaxed(&s->wrk.rcv_ready, load_acquire(&s->cli.rcv_read));
    store_relaxed(&s->wrk.peer_id, r->peer_id);
    store_relaxed(&s->wrk.peer_closed, 0u);
    store_relaxed(&s->wrk.error, 0u);
    store_relaxed(&s->wrk.start_us, now);
    store_relaxed(&s->wrk.flow_window, buf);
    store_release(&s->wrk.payload, k->payload);
    store_release(&s->wrk.state, (uint32_t)RTUDP_UDT_CONNECTED);
    bump(&x->a->cnt.connected, 1);
    udt_moved(x, i);
}

/* ------------------------------------------------------------ receiving data */

static uint32_t rcv_avail_pkts(const struct udt_ctx *x, const struct rtudp_udt_sock *s)
{
    uint64_t used = load_relaxed(&s->wrk.rcv_ready) - load_acquire(&s->cli.rcv_read);
    uint32_t buf = x->cfg->buf_pkts;
    uint32_t avail = used >= buf ? 0 : buf - (uint32_t)used;
    return avail < 2 ? 2 : avail; /* libudt: at least 2, so the sender probes */
}

/* a NAK of n loss-list words (at most NAK_WORDS_MAX) to socket i's peer, counted */
static void send_nak(struct udt_ctx *x, uint32_t i, const uint32_t *words, size_t n)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    uint8_t out[UDT_HDR_LEN + 4 * NAK_WORDS_MAX];
    int len = udt_build_nak(out, sizeof out, load_relaxed(&s->wrk.peer_id), 0, words, n);
    if (send_ctrl(x, i, out, len) == 0) {
        bump(&x->a->cnt.naks_sent, 1);
        bump(&s->wrk.nak_sent, 1);
    }
}

static void send_nak_range(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi)
{
    uint32_t words[2];
    send_nak(x, i, words, udt_nak_encode_range(lo, hi, words));
}

/*
 * Each loss is reported and resent once per round trip, not once per NAK.  The
 * receiver's periodic NAK re-reports a loss only when its last report is older than
 * RTT + 4 RTTVar (the UDT paper's receiver; so a retransmission on its way is not
 * asked for again, and a libudt sender, whose DAIMD may cut its rate on any NAK, gets
 * one only for a retransmission that was lost).  The sender resends a number a NAK
 * reports only when it did not resend it within RTT + 4 RTTVar: a report older than
 * that retransmission (sent before it could have arrived) asks for nothing.  The
 * times live in the buffer slots: an empty receive slot's born_us is when its loss
 * was last reported, a send slot's tag when it last left (bit 0: as a retransmission).
 */
static uint64_t report_guard_us(const struct udt_conn *k)
{
    return (uint64_t)k->srtt + 4u * (uint64_t)k->srtt_var;
}

/* the runs of consecutive numbers of lo..hi that keep() accepts, each given to run() */
typedef bool (*seq_keep_fn)(struct udt_ctx *x, uint32_t i, uint32_t seq);
typedef void (*seq_run_fn)(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi, void *arg);

static void for_runs(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi, seq_keep_fn keep,
                     seq_run_fn run, void *arg)
{
    bool open = false;
    uint32_t start = lo;
    for (uint32_t q = lo, n = 0; n <= x->cfg->buf_pkts; q = udt_seq_inc(q), n++) {
        bool k = keep(x, i, q);
        if (k && !open) {
            start = q;
            open = true;
        } else if (!k && open) {
            run(x, i, start, udt_seq_dec(q), arg);
            open = false;
        }
        if (q == hi)
            break;
    }
    if (open)
        run(x, i, start, hi, arg);
}

/* the empty receive slot of seq, NULL when it is not in the buffer's window */
static struct rtudp_udt_slot *rcv_gap_slot(struct udt_ctx *x, uint32_t i, uint32_t seq)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    int32_t off = udt_seq_off(udt_conn_of(x, i)->rcv_next, seq);
    uint64_t idx = load_relaxed(&s->wrk.rcv_ready) + (uint64_t)off;
    if (off < 0 || idx - load_acquire(&s->cli.rcv_read) >= x->cfg->buf_pkts)
        return NULL;
    return rtudp_udt_rcv_slot(x->a, i, idx);
}

/* lo..hi were reported lost now */
static void mark_reported(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi)
{
    for (uint32_t q = lo, n = 0; n < x->cfg->buf_pkts; q = udt_seq_inc(q), n++) {
        struct rtudp_udt_slot *sl = rcv_gap_slot(x, i, q);
        if (sl)
            store_relaxed(&sl->born_us, x->now_us);
        if (q == hi)
            break;
    }
}

/* move rcv_ready over the slots that are filled (or dropped) */
static void rcv_advance(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t ready = load_relaxed(&s->wrk.rcv_ready), start = ready;
    uint64_t read = load_acquire(&s->cli.rcv_read);
    while (ready - read < x->cfg->buf_pkts &&
           load_relaxed(&rtudp_udt_rcv_slot(x->a, i, ready)->tag) == ready + 1) {
        ready++;
        k->rcv_next = udt_seq_inc(k->rcv_next);
    }
    if (ready != start) {
        udt_ll_remove_upto(rcv_ll(x, i), udt_seq_dec(k->rcv_next));
        store_release(&s->wrk.rcv_ready, ready);
        udt_moved(x, i);
    }
}

static void send_ack(struct udt_ctx *x, uint32_t i, bool light);
static bool send_rate_first(struct udt_ctx *x, uint32_t i);
static void periodic_nak(struct udt_ctx *x, uint32_t i);

/*
 * A libudt sender (CUDTCC) ends its slow start on the first NAK and paces from then on
 * at the receive rate the receiver last reported; before any report that is its start
 * value, 16 packets/s, from which it climbs for seconds.  UDT4's receiver reports the
 * rate in its ACKs every SYN, so whether the first NAK comes after one is a matter of
 * when the first loss falls.  Here the first loss waits for the rate: while no full
 * ACK with a receive rate has gone out, a gap is reported right after one (sent at
 * once when the rate is known), or, while the receive speed is not yet known (more
 * than half of its 16 arrival intervals must be measured: before that the window's
 * start values give UDT4's 1 packet/s, which leaves the sender as slow), held until
 * it is, and never past the next ACK timer run (at most a SYN).
 */
static uint32_t measured_speed(const struct udt_conn *k)
{
    return udt_pktwin_measured(&k->pw) ? udt_pktwin_rcv_speed(&k->pw) : 0;
}

static void report_first_loss(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi)
{
    struct udt_conn *k = udt_conn_of(x, i);
    if (!k->rate_told && !send_rate_first(x, i) && measured_speed(k) == 0) {
        k->nak_held = 1; /* unreported: periodic_nak takes it with the rest */
        return;
    }
    mark_reported(x, i, lo, hi);
    send_nak_range(x, i, lo, hi);
}

/* the held loss reports, after the rate (when `timer`: whatever the rate) */
static void release_held_nak(struct udt_ctx *x, uint32_t i, bool timer)
{
    struct udt_conn *k = udt_conn_of(x, i);
    if (!k->nak_held || (!timer && measured_speed(k) == 0))
        return;
    if (!timer)
        send_rate_first(x, i);
    k->nak_held = 0;
    periodic_nak(x, i);
}

static void on_data(struct udt_ctx *x, uint32_t i, const struct udt_data *d, const uint8_t *payload)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t now = x->now_us;
    udt_pktwin_arrival(&k->pw, d->seq, udt_arrival_us(x));
    udt_timers_data_arrived(&k->tm, d->payload_len < k->payload, now);
    bump(&x->a->cnt.rx_data, 1);
    bump(&s->wrk.pkt_recv, 1);
    bump(&s->wrk.bytes_recv, d->payload_len);
    int32_t off = udt_seq_off(k->rcv_next, d->seq);
    uint64_t ready = load_relaxed(&s->wrk.rcv_ready);
    if (off < 0 || d->payload_len > RTUDP_UDT_PAYLOAD_MAX) {
        bump(&x->a->cnt.rx_dup, 1);
        return;
    }
    uint64_t idx = ready + (uint64_t)off;
    if (idx - load_acquire(&s->cli.rcv_read) >= x->cfg->buf_pkts) {
        bump(&x->a->cnt.rx_no_room, 1);
        return;
    }
    struct rtudp_udt_slot *sl = rtudp_udt_rcv_slot(x->a, i, idx);
    if (load_relaxed(&sl->tag) == idx + 1) {
        bump(&x->a->cnt.rx_dup, 1);
        return;
    }
    store_bytes_relaxed(sl + 1, payload, d->payload_len);
    store_relaxed(&sl->len, d->payload_len);
    store_relaxed(&sl->msg, (uint32_t)d->boundary << 30 | (uint32_t)d->inorder << 29 | d->msgno);
    store_relaxed(&sl->flags, 0u);
    store_release(&sl->tag, idx + 1);
    if (idx != ready && !d->inorder && k->cfg.sock_type == UDT_SOCK_DGRAM)
        udt_moved(x, i); /* past a gap, a message sent out of order may be whole: readers look */
    uint32_t next = udt_seq_inc(k->rcv_curr);
    if (udt_seq_cmp(d->seq, next) > 0) {
        /* a gap: report it at once (libudt processData) */
        uint32_t hi = udt_seq_dec(d->seq);
        int64_t added = udt_ll_insert(rcv_ll(x, i), next, hi);
        if (added > 0)
            bump(&s->wrk.pkt_rcv_loss, (uint64_t)added);
        k->rcv_curr = d->seq;
        if (k->rate_told) {
            mark_reported(x, i, next, hi);
            send_nak_range(x, i, next, hi);
        } else {
            rcv_advance(x, i);
            report_first_loss(x, i, next, hi);
        }
    } else if (udt_seq_cmp(d->seq, k->rcv_curr) > 0) {
        k->rcv_curr = d->seq;
    } else {
        udt_ll_remove(rcv_ll(x, i), d->seq);
    }
    rcv_advance(x, i);
    release_held_nak(x, i, false);
    enum udt_ack_due due = udt_timers_ack_due(&k->tm, now, k->cc.ack_interval);
    if (due == UDT_ACKDUE_LIGHT) {
        send_ack(x, i, true);
        udt_timers_light_done(&k->tm);
    }
}

static void on_dropreq(struct udt_ctx *x, uint32_t i, const struct udt_ctrl *c)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint32_t first = c->u.drop.first, last = c->u.drop.last;
    uint64_t ready = load_relaxed(&s->wrk.rcv_ready), read = load_acquire(&s->cli.rcv_read);
    int32_t off_last = udt_seq_off(k->rcv_next, last);
    if (udt_seq_cmp(last, first) >= 0 && off_last < 0)
        return; /* all of it is behind us: a late copy of one we had */
    /* What a drop request may give up (anyone who can send from the peer's address
     * with our id can forge one): never STREAM data (a stream has no messages, and
     * libudt's STREAM sender never sends one: skipped bytes would corrupt the stream
     * silently); as libudt, only from the next sequence number expected on
     * (first <= rcv_curr + 1: a range further ahead would make packets not yet seen
     * count as dropped and discard the real ones as duplicates); and only within the
     * receive window, so rcv_curr never passes slots left unmarked. */
    if (k->cfg.sock_type != UDT_SOCK_DGRAM || udt_seq_cmp(last, first) < 0 ||
        udt_seq_len(first, last) > x->cfg->buf_pkts ||
        udt_seq_cmp(first, udt_seq_inc(k->rcv_curr)) > 0 ||
        ready + (uint64_t)off_last - read >= x->cfg->buf_pkts) {
        bump(&x->a->cnt.drops_ignored, 1);
        return;
    }
    for (uint32_t q = first;; q = udt_seq_inc(q)) {
        int32_t off = udt_seq_off(k->rcv_next, q);
        if (off >= 0) { /* off <= off_last: within the window, checked above */
            uint64_t idx = ready + (uint64_t)off;
            struct rtudp_udt_slot *sl = rtudp_udt_rcv_slot(x->a, i, idx);
            if (load_relaxed(&sl->tag) != idx + 1) {
                store_relaxed(&sl->len, 0u);
                store_relaxed(&sl->msg, 0u);
                store_relaxed(&sl->flags, (uint32_t)RTUDP_UDT_SLOT_DROPPED);
                store_release(&sl->tag, idx + 1);
            }
        }
        if (q == last)
            break;
    }
    udt_ll_remove_range(rcv_ll(x, i), first, last);
    if (udt_seq_cmp(last, k->rcv_curr) > 0)
        k->rcv_curr = last;
    bump(&x->a->cnt.msgs_dropped, 1);
    bump(&s->wrk.rcv_drop, 1);
    rcv_advance(x, i);
}

/* ------------------------------------------------------------ ACK, ACK2 */

/* an ACK: light, or (due by the timers) short or full as UDT4's rules say, or
 * (rate_first) full now with the receive rate, when it acknowledges something new:
 * a libudt sender drops an ACK that does not, rates and all.  Whether it went out. */
static bool ack_out(struct udt_ctx *x, uint32_t i, bool light, bool rate_first)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t now = x->now_us;
    uint32_t ack = k->rcv_next, avail = rcv_avail_pkts(x, s);
    /* the buffer reopened since the last ACK told the sender it was (nearly) full */
    bool reopened = avail > k->last_avail && k->last_avail < x->cfg->buf_pkts / 2;
    uint8_t out[UDT_HDR_LEN + UDT_ACK_FULL_LEN];
    uint32_t peer = load_relaxed(&s->wrk.peer_id);
    if (ack == k->rcv_last_ackack && !reopened)
        return false;
    if (light) {
        struct udt_ack a = {.kind = UDT_ACK_LIGHT, .ack_seq = ack};
        return send_ctrl(x, i, out, udt_build_ack(out, sizeof out, peer, 0, 0, &a)) == 0;
    }
    uint32_t rate = rate_first ? measured_speed(k) : 0;
    if (rate_first && (rate == 0 || udt_seq_cmp(ack, k->rcv_last_ack) <= 0))
        return false;
    if (udt_seq_cmp(ack, k->rcv_last_ack) > 0) {
        k->rcv_last_ack = ack;
    } else if (ack == k->rcv_last_ack) {
        /* a repeat waits RTT + 4 RTTVar since the last full ACK (libudt's
         * m_ullLastAckTime, which short ACKs leave alone) */
        if (!reopened && k->tm.full_ack_sent && now >= k->tm.last_full_ack_us &&
            now - k->tm.last_full_ack_us < (uint64_t)k->srtt + 4u * k->srtt_var)
            return false;
    } else {
        return false;
    }
    k->ackno = udt_ackno_inc(k->ackno);
    if (k->ackno == 0)
        k->ackno = 1;
    struct udt_ack a = {.kind = UDT_ACK_SHORT, .ack_seq = ack, .rtt_us = k->srtt,
                        .rtt_var_us = k->srtt_var, .avail_buf = avail};
    if (rate_first || udt_timers_ack_full(&k->tm, now)) {
        a.kind = UDT_ACK_FULL;
        a.rcv_rate = rate_first ? rate : udt_pktwin_rcv_speed(&k->pw);
        a.capacity = udt_pktwin_bandwidth(&k->pw);
        udt_timers_full_ack_sent(&k->tm, now);
    }
    k->last_avail = avail;
    store_relaxed(&s->wrk.flow_window, avail);
    bool sent = send_ctrl(x, i, out, udt_build_ack(out, sizeof out, peer, 0, k->ackno, &a)) == 0;
    if (sent) {
        bump(&x->a->cnt.acks_sent, 1);
        bump(&s->wrk.ack_sent, 1);
        if (a.kind == UDT_ACK_FULL && a.rcv_rate > 0 && udt_pktwin_measured(&k->pw))
            k->rate_told = 1;
    }
    udt_ackwin_store(&k->aw, k->ackno, ack, now);
    return sent;
}

static void send_ack(struct udt_ctx *x, uint32_t i, bool light)
{
    ack_out(x, i, light, false);
}

/* a full ACK with the receive rate now, if it is known and the ACK is new */
static bool send_rate_first(struct udt_ctx *x, uint32_t i)
{
    return ack_out(x, i, false, true);
}

static void rtt_sample(struct udt_conn *k, uint32_t rtt)
{
    uint32_t d = rtt > k->srtt ? rtt - k->srtt : k->srtt - rtt;
    k->srtt_var = (k->srtt_var * 3 + d) >> 2;
    k->srtt = (uint32_t)(((uint64_t)k->srtt * 7 + rtt) >> 3);
}

/* the peer acknowledged everything before ack: free the send slots */
static void snd_acked_to(struct udt_ctx *x, uint32_t i, uint32_t ack)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    if (udt_seq_cmp(ack, k->snd_last_ack) <= 0 || udt_seq_cmp(ack, udt_seq_inc(k->snd_curr)) > 0)
        return;
    uint32_t n = (uint32_t)udt_seq_off(k->snd_last_ack, ack);
    if (n > 1)
        k->head_resends = 0;
    k->snd_last_ack = ack;
    k->snd_progress_us = x->now_us;
    udt_ll_remove_upto(snd_ll(x, i), udt_seq_dec(ack));
    store_release(&s->wrk.snd_acked, load_relaxed(&s->wrk.snd_acked) + n);
    udt_moved(x, i);
}

static void on_ack(struct udt_ctx *x, uint32_t i, const struct udt_ctrl *c)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    const struct udt_ack *a = &c->u.ack;
    bump(&x->a->cnt.acks_recv, 1);
    bump(&s->wrk.ack_recv, 1);
    if (udt_seq_cmp(a->ack_seq, udt_seq_inc(k->snd_curr)) > 0)
        return; /* acknowledges what we never sent: ignored (libudt breaks the connection) */
    /* A light ACK frees nothing (libudt's sender only moves its flow window on one):
     * libudt's receiver makes data readable only as it sends a full ACK, so a sender
     * that counted a light one as delivered could finish its linger and shut the
     * connection down while the last packets, received, were not readable yet; the
     * receiver's recv then fails and they are lost (a lossy relay under load: 2.2-2.8
     * of 3 MB arrived, in 1 of 5-12 runs) */
    if (a->kind == UDT_ACK_LIGHT)
        return;
    uint8_t out[UDT_HDR_LEN + UDT_PAD_LEN];
    send_ctrl(x, i, out,
              udt_build_ack2(out, sizeof out, load_relaxed(&s->wrk.peer_id), 0, c->info));
    snd_acked_to(x, i, a->ack_seq);
    if (a->avail_buf)
        k->peer_fw = a->avail_buf;
    if (a->rtt_us)
        rtt_sample(k, a->rtt_us);
    if (a->kind == UDT_ACK_FULL) {
        if (a->rcv_rate > 0) {
            k->delivery_rate = (k->delivery_rate * 7 + a->rcv_rate) >> 3;
            k->cc.rate_sample = a->rcv_rate;
        }
        if (a->capacity > 0)
            k->bandwidth = (k->bandwidth * 7 + a->capacity) >> 3;
    }
    k->cc.rtt_us = k->srtt;
    k->cc.rcv_rate = k->delivery_rate;
    k->cc.bandwidth = k->bandwidth;
    udt_cc_on_ack(&k->cc, a->ack_seq, x->now_us);
}

static void on_ack2(struct udt_ctx *x, uint32_t i, const struct udt_ctrl *c)
{
    struct udt_conn *k = udt_conn_of(x, i);
    uint32_t ack;
    int64_t rtt = udt_ackwin_ack2(&k->aw, c->info, udt_arrival_us(x), &ack);
    if (rtt <= 0)
        return;
    rtt_sample(k, rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt);
    if (udt_seq_cmp(ack, k->rcv_last_ackack) > 0)
        k->rcv_last_ackack = ack;
}

/* ------------------------------------------------------------ NAK in */

/* seq's send slot tag (when it last left << 1 | resent); false if it is not in flight */
static bool sent_tag(struct udt_ctx *x, uint32_t i, uint32_t seq, uint64_t *tag)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    int32_t off = udt_seq_off(k->snd_last_ack, seq);
    uint64_t acked = load_relaxed(&s->wrk.snd_acked);
    if (off < 0 || acked + (uint64_t)off >= k->snd_sent)
        return false;
    *tag = load_relaxed(&rtudp_udt_snd_slot(x->a, i, acked + (uint64_t)off)->tag);
    return true;
}

/* a NAK's seq may be resent: never resent yet, or not within the guard */
static bool resend_due(struct udt_ctx *x, uint32_t i, uint32_t seq)
{
    uint64_t tag, at;
    if (!sent_tag(x, i, seq, &tag))
        return false;
    at = tag >> 1;
    return !(tag & 1) || at > x->now_us ||
           x->now_us - at >= report_guard_us(udt_conn_of(x, i));
}

static void queue_resend(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi, void *fresh)
{
    int64_t added = udt_ll_insert(snd_ll(x, i), lo, hi);
    if (added > 0)
        *(uint64_t *)fresh += (uint64_t)added;
}

static void on_nak(struct udt_ctx *x, uint32_t i, const struct udt_ctrl *c, const uint8_t *raw)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint32_t words[NAK_WORDS_MAX];
    uint32_t n = c->u.nak.nwords < NAK_WORDS_MAX ? c->u.nak.nwords : NAK_WORDS_MAX;
    for (uint32_t j = 0; j < n; j++)
        words[j] = udt_nak_word(raw, c, j);
    struct udt_range r[NAK_WORDS_MAX];
    int nr = udt_nak_decode(words, n, r, NAK_WORDS_MAX, NULL);
    bump(&x->a->cnt.naks_recv, 1);
    bump(&s->wrk.nak_recv, 1);
    if (nr <= 0)
        return;
    for (int j = 0; j < nr; j++)
        if (udt_seq_cmp(r[j].hi, k->snd_curr) > 0)
            return; /* reports loss of what we never sent: ignored as a whole */
    uint64_t fresh = 0;
    for (int j = 0; j < nr; j++) {
        uint32_t lo = r[j].lo, hi = r[j].hi;
        if (udt_seq_cmp(hi, k->snd_last_ack) < 0)
            continue;
        if (udt_seq_cmp(lo, k->snd_last_ack) < 0)
            lo = k->snd_last_ack;
        for_runs(x, i, lo, hi, resend_due, queue_resend, &fresh);
    }
    bump(&s->wrk.pkt_snd_loss, fresh);
    udt_cc_on_loss(&k->cc, r[0].lo, (uint32_t)(fresh > UINT32_MAX ? UINT32_MAX : fresh),
                   x->now_us);
    if (k->next_send_us > (double)x->now_us)
        k->next_send_us = (double)x->now_us; /* retransmissions go first, now */
}

/* ------------------------------------------------------------ dispatch */

void udt_conn_on_packet(struct udt_ctx *x, uint32_t i, const struct udt_pkt *pkt,
                        const uint8_t *raw, uint32_t len)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    udt_conn_sane(x, i);
    udt_timers_heard(&k->tm, x->now_us);
    if (!pkt->is_ctrl) {
        if (len >= UDT_HDR_LEN)
            on_data(x, i, &pkt->data, raw + UDT_HDR_LEN);
        return;
    }
    const struct udt_ctrl *c = &pkt->ctrl;
    switch (c->type) {
    case UDT_CT_ACK:
        on_ack(x, i, c);
        break;
    case UDT_CT_ACK2:
        on_ack2(x, i, c);
        break;
    case UDT_CT_NAK:
        on_nak(x, i, c, raw);
        break;
    case UDT_CT_DROPREQ:
        on_dropreq(x, i, c);
        break;
    case UDT_CT_CONGESTION:
        udt_cc_on_warning(&k->cc);
        break;
    case UDT_CT_SHUTDOWN:
        store_relaxed(&s->wrk.peer_closed, 1u);
        if (k->role == UDT_ROLE_CLOSING)
            udt_sock_finish(x, i, RTUDP_UDT_CLOSED, 0);
        else
            udt_sock_finish(x, i, RTUDP_UDT_BROKEN, RTUDP_UDT_ECONNLOST);
        break;
    case UDT_CT_HANDSHAKE: {
        /* the peer missed our last handshake answer */
        uint8_t out[UDT_HS_OUT_MAX];
        int n = udt_hs_connected_reply(&k->cfg, k->rendezvous, &k->res, &c->u.hs, out, sizeof out);
        send_ctrl(x, i, out, n);
        break;
    }
    default: /* keep-alive, error, user: heard, nothing else */
        break;
    }
}

/* ------------------------------------------------------------ sending */

/* the seq range [*first, *last] of the message around send index idx */
static void msg_range(struct udt_ctx *x, uint32_t i, uint64_t idx, uint32_t msgno, uint64_t lo_idx,
                      uint64_t hi_idx, uint64_t *first, uint64_t *last)
{
    uint64_t f = idx, l = idx;
    /* a message is at most a buffer long (and the indexes may be garbage) */
    for (uint32_t n = 0; n < x->cfg->buf_pkts && f > lo_idx &&
         (load_relaxed(&rtudp_udt_snd_slot(x->a, i, f - 1)->msg) & UDT_MSG_MAX) == msgno; n++)
        f--;
    for (uint32_t n = 0; n < x->cfg->buf_pkts && l + 1 < hi_idx &&
         (load_relaxed(&rtudp_udt_snd_slot(x->a, i, l + 1)->msg) & UDT_MSG_MAX) == msgno; n++)
        l++;
    *first = f;
    *last = l;
}

/* the message of send index idx outlived its TTL: the peer is told to drop it */
static void drop_msg(struct udt_ctx *x, uint32_t i, uint64_t idx, uint32_t msg)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t acked = load_relaxed(&s->wrk.snd_acked), f, l;
    uint32_t msgno = msg & UDT_MSG_MAX;
    msg_range(x, i, idx, msgno, acked, k->snd_sent, &f, &l);
    uint32_t first = udt_seq_add(k->snd_last_ack, (int32_t)(f - acked));
    uint32_t last = udt_seq_add(k->snd_last_ack, (int32_t)(l - acked));
    udt_ll_remove_range(snd_ll(x, i), first, last);
    uint8_t out[UDT_HDR_LEN + UDT_DROP_LEN];
    int n = udt_build_dropreq(out, sizeof out, load_relaxed(&s->wrk.peer_id), 0, msgno, first,
                              last);
    send_ctrl(x, i, out, n);
    bump(&x->a->cnt.msgs_dropped, 1);
    bump(&s->wrk.snd_drop, 1);
}

/* what holds the sender when it cannot send anything new (RTUDP_UDT_WAIT_*): the
 * peer's full receive buffer (its reader is behind: what it cannot take is dropped
 * and resent, so this comes first), the packet at the ACK point when it was lost and
 * resent (the loss list), else the window that is full (window_full) or the
 * acknowledgement of what is out */
static uint32_t snd_held_by(struct udt_ctx *x, uint32_t i, bool window_full)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t acked = load_relaxed(&s->wrk.snd_acked);
    if (acked >= k->snd_sent)
        return RTUDP_UDT_WAIT_NONE;
    if (k->peer_fw <= 2)
        return RTUDP_UDT_WAIT_RCVBUF; /* libudt's floor: the peer's buffer is full */
    if (k->snd_sent - acked <= x->cfg->buf_pkts &&
        (load_relaxed(&rtudp_udt_snd_slot(x->a, i, acked)->tag) & 1))
        return RTUDP_UDT_WAIT_LOSS;
    if (!window_full)
        return RTUDP_UDT_WAIT_ACK;
    return (double)k->peer_fw <= k->cc.cwnd ? RTUDP_UDT_WAIT_FLOW : RTUDP_UDT_WAIT_CWND;
}

/* what the sender waits for while its pacing holds it: lost packets to resend (its
 * loss list); a new packet the windows allow: the pacing; else what snd_held_by says */
static uint32_t snd_paced_wait(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    if (udt_ll_count(snd_ll(x, i)))
        return k->peer_fw <= 2 ? RTUDP_UDT_WAIT_RCVBUF : RTUDP_UDT_WAIT_LOSS;
    uint64_t head = load_acquire(&s->cli.snd_head), acked = load_relaxed(&s->wrk.snd_acked);
    if (k->snd_sent >= head || head - acked > x->cfg->buf_pkts)
        return snd_held_by(x, i, false);
    double w = k->cc.cwnd < (double)k->peer_fw ? k->cc.cwnd : (double)k->peer_fw;
    if ((double)udt_seq_len(k->snd_last_ack, udt_seq_inc(k->snd_curr)) > w)
        return snd_held_by(x, i, true);
    return RTUDP_UDT_WAIT_PACING;
}

/* send what pacing and the windows allow now; returns 1 if more is waiting (and
 * notes in snd_wait what the sender waits for) */
static int pump(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t now = x->now_us;
    uint8_t out[UDT_HDR_LEN + RTUDP_UDT_PAYLOAD_MAX];
    k->snd_wait = RTUDP_UDT_WAIT_PACING;
    for (int sent = 0; sent < PUMP_MAX; sent++) {
        if ((double)now < k->next_send_us) {
            k->snd_wait = snd_paced_wait(x, i);
            return 1;
        }
        uint64_t acked = load_relaxed(&s->wrk.snd_acked), idx = 0;
        uint32_t seq = 0;
        bool retrans = false;
        while (udt_ll_pop(snd_ll(x, i), &seq)) {
            int32_t off = udt_seq_off(k->snd_last_ack, seq);
            if (off >= 0 && acked + (uint64_t)off < k->snd_sent) {
                retrans = true;
                idx = acked + (uint64_t)off;
                break;
            }
        }
        if (!retrans) {
            double w = k->cc.cwnd < (double)k->peer_fw ? k->cc.cwnd : (double)k->peer_fw;
            uint64_t head = load_acquire(&s->cli.snd_head);
            if (k->snd_sent >= head || head - acked > x->cfg->buf_pkts) {
                k->snd_wait = snd_held_by(x, i, false);
                return 0; /* nothing new (or a client's garbage) */
            }
            if ((double)udt_seq_len(k->snd_last_ack, udt_seq_inc(k->snd_curr)) > w) {
                k->snd_wait = snd_held_by(x, i, true);
                return 0; /* window full: an ACK or NAK wakes us */
            }
            idx = k->snd_sent;
            seq = udt_seq_inc(k->snd_curr);
        }
        struct rtudp_udt_slot *sl = rtudp_udt_snd_slot(x->a, i, idx);
        uint32_t len = load_relaxed(&sl->len), msg = load_relaxed(&sl->msg);
        uint32_t ttl = load_relaxed(&sl->ttl_ms);
        if (len > k->payload)
            len = k->payload;
        if (retrans && ttl && now - load_relaxed(&sl->born_us) > (uint64_t)ttl * 1000u) {
            drop_msg(x, i, idx, msg);
            continue;
        }
        struct udt_data d = {.seq = seq, .boundary = (uint8_t)(msg >> 30),
                             .inorder = (msg >> 29) & 1, .msgno = msg & UDT_MSG_MAX,
                             .timestamp = (uint32_t)(now - k->start_us),
                             .dst_id = load_relaxed(&s->wrk.peer_id)};
        uint8_t pay[RTUDP_UDT_PAYLOAD_MAX];
        load_bytes_relaxed(pay, sl + 1, len);
        int n = udt_build_data(out, sizeof out, &d, pay, len);
        if (udt_send_pkt(x, i, out, n) != 0) {
            if (retrans)
                udt_ll_insert(snd_ll(x, i), seq, seq);
            k->next_send_us = (double)(now + EAGAIN_RETRY_US);
            return 1;
        }
        store_relaxed(&sl->tag, now << 1 | (retrans ? 1u : 0u));
        if (!retrans) {
            if (acked == k->snd_sent)
                k->snd_progress_us = now; /* out of idle: the stall clock starts now */
            k->snd_curr = seq;
            k->snd_sent++;
        }
        udt_cc_on_pkt_sent(&k->cc, seq, retrans, now);
        bump(&x->a->cnt.tx_data, 1);
        bump(&s->wrk.pkt_sent, 1);
        bump(&s->wrk.bytes_sent, len);
        if (retrans) {
            bump(&x->a->cnt.tx_retrans, 1);
            bump(&s->wrk.pkt_retrans, 1);
        }
        double p = k->cc.pkt_period_us, lag = p > PACE_CATCHUP_US ? p : PACE_CATCHUP_US;
        if (k->next_send_us < (double)now - lag)
            k->next_send_us = (double)now - lag; /* late: catch up this much, no more */
        /* libudt: a new packet whose seq ends in 0x0 is followed at once (probe pair) */
        if (retrans || (seq & 0xF) != 0)
            k->next_send_us += p;
    }
    return 1;
}

struct nak_words {
    size_t n;
    uint32_t words[NAK_WORDS_MAX];
};

/* a loss not reported within the guard (or not in the buffer's window: reported,
 * the sender knows what to do with it) */
static bool report_due(struct udt_ctx *x, uint32_t i, uint32_t seq)
{
    struct rtudp_udt_slot *sl = rcv_gap_slot(x, i, seq);
    if (!sl)
        return true;
    uint64_t at = load_relaxed(&sl->born_us);
    return at > x->now_us || x->now_us - at >= report_guard_us(udt_conn_of(x, i));
}

static void add_report(struct udt_ctx *x, uint32_t i, uint32_t lo, uint32_t hi, void *arg)
{
    struct nak_words *w = arg;
    if (w->n + 2 > NAK_WORDS_MAX)
        return; /* the rest in the next one */
    w->n += udt_nak_encode_range(lo, hi, w->words + w->n);
    mark_reported(x, i, lo, hi);
}

/* a retransmission the peer neither acknowledged nor reported again within the
 * guard and an ACK period */
static bool stale_tag(struct udt_ctx *x, uint32_t i, uint32_t seq, bool resent_only)
{
    uint64_t tag, at;
    if (!sent_tag(x, i, seq, &tag))
        return false;
    at = tag >> 1;
    return (!resent_only || (tag & 1)) && at <= x->now_us &&
           x->now_us - at >= report_guard_us(udt_conn_of(x, i)) + UDT_SYN_US;
}

static bool resend_stale(struct udt_ctx *x, uint32_t i, uint32_t seq)
{
    return stale_tag(x, i, seq, true);
}

/* any packet that left the guard and an ACK period ago */
static bool sent_long_ago(struct udt_ctx *x, uint32_t i, uint32_t seq)
{
    return stale_tag(x, i, seq, false);
}

/*
 * The oldest unacknowledged packet, sent more than the guard plus an ACK period ago:
 * the peer's ACKs would have moved past it, so it (or the NAK about it) was lost.  It
 * is resent then, alone, without waiting for EXP (which resends everything, after
 * 300 ms at least): a libudt receiver sends no periodic NAK and no repeated ACK for a
 * stuck ACK point, so a lost retransmission, or a lost NAK, would otherwise stall the
 * window until EXP.  Returns when to look again (UINT64_MAX: nothing in flight).
 */
static uint64_t resend_stuck_head(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t acked = load_relaxed(&s->wrk.snd_acked);
    if (acked >= k->snd_sent || k->snd_sent - acked > x->cfg->buf_pkts)
        return UINT64_MAX;
    uint64_t at = load_relaxed(&rtudp_udt_snd_slot(x->a, i, acked)->tag) >> 1;
    uint64_t due = at + report_guard_us(k) + UDT_SYN_US;
    if (at > x->now_us || x->now_us < due)
        return at > x->now_us ? x->now_us + UDT_SYN_US : due;
    uint64_t added = udt_ll_insert(snd_ll(x, i), k->snd_last_ack, k->snd_last_ack) > 0;
    /* and every retransmission after it that the peer had time to acknowledge or
     * report again: the holes behind the head are mostly lost retransmissions, each
     * of which would otherwise wait until the ACK point reached it.  When the ACK
     * point has moved by only our head resends STUCK_HEAD_GO_BACK times running, a
     * whole run was lost with its one NAK (a receiver's socket overflowed): then,
     * as libudt's EXP but after a round trip instead of 300 ms or more, everything
     * unacknowledged that left that long ago goes again */
    k->head_resends = k->head_resends < STUCK_HEAD_GO_BACK ? k->head_resends + 1 : 0;
    seq_keep_fn which = k->head_resends ? resend_stale : sent_long_ago;
    if (udt_seq_cmp(k->snd_curr, k->snd_last_ack) > 0)
        for_runs(x, i, udt_seq_inc(k->snd_last_ack), k->snd_curr, which, queue_resend, &added);
    /* lost without a report: the congestion control must see it (a go-back that
     * overflows the path again is otherwise invisible to it) */
    udt_cc_on_resend(&k->cc, (uint32_t)(added > UINT32_MAX ? UINT32_MAX : added));
    if (added && k->next_send_us > (double)x->now_us)
        k->next_send_us = (double)x->now_us;
    return x->now_us + report_guard_us(k) + UDT_SYN_US;
}

/* the periodic NAK: what is still missing and was not reported within the guard */
static void periodic_nak(struct udt_ctx *x, uint32_t i)
{
    struct udt_conn *k = udt_conn_of(x, i);
    struct udt_losslist *ll = rcv_ll(x, i);
    uint64_t loss = udt_ll_count(ll);
    k->next_nak_us = x->now_us + udt_nak_interval_us(k->srtt, k->srtt_var, loss,
                                                     udt_pktwin_rcv_speed(&k->pw),
                                                     x->cfg->nak_floor_us);
    if (!loss)
        return;
    struct nak_words w = {.n = 0};
    for (uint32_t j = 0; j < udt_ll_ranges(ll) && w.n + 2 <= NAK_WORDS_MAX; j++) {
        struct udt_range r = udt_ll_range(ll, j);
        for_runs(x, i, r.lo, r.hi, report_due, add_report, &w);
    }
    if (w.n)
        send_nak(x, i, w.words, w.n);
}

static void send_empty(struct udt_ctx *x, uint32_t i, uint16_t type)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    uint8_t out[UDT_HDR_LEN + UDT_PAD_LEN];
    send_ctrl(x, i, out, udt_build_empty(out, sizeof out, type, load_relaxed(&s->wrk.peer_id), 0));
}

static void perfmon(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    double bits = (double)k->payload * 8.0;
    store_relaxed(&s->wrk.rtt_ms, k->srtt / 1000.0);
    store_relaxed(&s->wrk.period_us, k->cc.pkt_period_us);
    store_relaxed(&s->wrk.cwnd, k->cc.cwnd);
    store_relaxed(&s->wrk.bandwidth_mbps, k->bandwidth * bits / 1e6);
    store_relaxed(&s->wrk.recv_rate_mbps, k->delivery_rate * bits / 1e6);
    store_relaxed(&s->wrk.snd_avail_pkts, (uint32_t)(x->cfg->buf_pkts -
                                                     rtudp_udt_snd_pending(x->a, i)));
}

uint64_t udt_conn_timer(struct udt_ctx *x, uint32_t i)
{
    struct rtudp_udt_sock *s = rtudp_udt_sock_at(x->a, i);
    struct udt_conn *k = udt_conn_of(x, i);
    uint64_t now = x->now_us;
    udt_conn_sane(x, i);
    enum udt_ack_due due = udt_timers_ack_due(&k->tm, now, k->cc.ack_interval);
    if (due == UDT_ACKDUE_ACK) {
        send_ack(x, i, false);
        udt_timers_ack_done(&k->tm, now, k->cc.ack_period_us);
        release_held_nak(x, i, true);
        perfmon(x, i);
    } else if (due == UDT_ACKDUE_LIGHT) {
        send_ack(x, i, true);
        udt_timers_light_done(&k->tm);
    }
    if (now >= k->next_nak_us)
        periodic_nak(x, i);
    bool unacked = udt_seq_inc(k->snd_curr) != k->snd_last_ack;
    switch (udt_timers_check_exp(&k->tm, now, k->srtt, k->srtt_var)) {
    case UDT_EXP_EXPIRED:
        if (unacked) {
            if (udt_ll_count(snd_ll(x, i)) == 0)
                udt_ll_insert(snd_ll(x, i), k->snd_last_ack, k->snd_curr);
            udt_cc_on_timeout(&k->cc, now);
            k->next_send_us = (double)now;
        } else {
            send_empty(x, i, UDT_CT_KEEPALIVE);
        }
        break;
    case UDT_EXP_BROKEN:
        bump(&x->a->cnt.broken, 1);
        udt_sock_finish(x, i, k->role == UDT_ROLE_CLOSING ? RTUDP_UDT_CLOSED : RTUDP_UDT_BROKEN,
                        RTUDP_UDT_ECONNLOST);
        return UINT64_MAX;
    default:
        break;
    }
    uint64_t head_at = unacked ? resend_stuck_head(x, i) : UINT64_MAX;
    int more = pump(x, i);
    if (rtudp_udt_snd_pending(x->a, i) == 0)
        k->snd_progress_us = now; /* idle is no stall */
    if (k->role == UDT_ROLE_CLOSING &&
        (rtudp_udt_snd_pending(x->a, i) == 0 || now >= k->close_at_us)) {
        send_empty(x, i, UDT_CT_SHUTDOWN);
        udt_sock_finish(x, i, RTUDP_UDT_CLOSED, 0);
        return UINT64_MAX;
    }
    uint64_t next = k->tm.next_ack_us;
    uint64_t exp = udt_timers_next_exp_us(&k->tm, k->srtt, k->srtt_var);
    if (exp < next)
        next = exp;
    if (k->next_nak_us < next)
        next = k->next_nak_us;
    if (head_at < next)
        next = head_at;
    if (more) {
        double at = k->next_send_us;
        if (k->cc.pkt_period_us < PACE_BATCH_US)
            at += PACE_BATCH_US - k->cc.pkt_period_us; /* a few packets a wake-up */
        uint64_t ns = at <= (double)now ? now : (uint64_t)at;
        if (ns < next)
            next = ns;
    }
    (void)s;
    return next;
}
