/*
 * rtp.c - the rtp channel kind (layout and modes: proto/rtp_area.h).
 *
 * TX thread: tx_record gives each frame its RTP header in place (the record's 12
 * bytes of header room) from a generator (csrc/rtp/generator.c) and its send time:
 * PACED one ptime after the previous frame, TIMED the record's deadline.  The loop's
 * timer queue does the timing, so frames queued ahead cost nothing until due.
 *
 * A worker that takes the channel over (a restart) carries the numbering on from the
 * TX line (rtp_area.h, tx_resume): the same SSRC, the next sequence number and
 * timestamp, TIMED's origin.  Records the dead worker numbered but did not send are
 * still in the ring with their headers; they leave with those headers (a receiver
 * sees the sequence the frames were queued in, whoever sends them).  PACED starts its
 * schedule afresh: frames already queued are consecutive media, not an underrun.
 *
 * The RX side keeps the jitter buffer's position in the area (rx_resume: the next
 * extended sequence number it releases, the last timestamp), so a worker that takes
 * the channel over goes on from there: what the dead one held and never released is
 * erased like any gap, and extended sequence numbers go on where they were.
 *
 * RX thread: each datagram is copied into a buffer of a fixed pool (the jitter
 * buffer keeps references, not bytes, and the loop's receive buffers are reused)
 * and pushed into the jitter buffer; frames it releases become RX ring records
 * (meta, struct rtudp_rtp_frame, datagram) straight from that buffer.  The pool has
 * a buffer for every slot the jitter buffer can hold, its two held-aside packets
 * and the one being pushed, so it never runs dry.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "proto/rtp_area.h"
#include "proto/rtp_rtcp.h"
#include "rtp/generator.h"
#include "rtp/jbuf.h"
#include "prefault.h"
#include "worker.h"

#define META ((uint32_t)sizeof(struct rtudp_rx_meta))
#define FRAME ((uint32_t)sizeof(struct rtudp_rtp_frame))
#define PREFIX (META + FRAME)     /* before the datagram in an RX record */
#define POOL_EXTRA 3u             /* jump + other-SSRC packets held aside, the one pushed */

struct rtp_kind {
    struct rtudp_rtp_area *area;
    /* TX thread */
    struct rtp_gen gen;
    uint32_t tx_mode;
    uint8_t pt;
    int64_t ptime_ns;
    int64_t next_at;          /* PACED: when the next frame is due; 0 before the first */
    int timed_started;        /* TIMED: t0/ts0 set */
    int64_t t0;
    uint32_t ts0;
    uint64_t target_gen;      /* the area's target generation last applied */
    int resumed;              /* took the channel over: records may carry our headers */
    int64_t carried_at;       /* PACED, taken over: when the frame of RTP time carried_ts */
    uint32_t carried_ts;      /* was due on the last worker's clock (carried_at 0: none) */
    /* RX thread */
    struct rtudp_chan *c;
    int jb_on;
    struct rtp_jbuf jb;
    uint8_t *pool;
    uint32_t buf_size;        /* PREFIX + max datagram, 8-aligned */
    uint32_t max_len;         /* datagrams longer than this are counted invalid */
    uint32_t *free_bufs;
    uint32_t n_free, n_bufs;
    /* RTCP (rtp_rtcp.h): sent by the TX thread, received by one of the two */
    struct rtp_rtcp rtcp;
};

static struct rtp_kind *kind_of(struct rtudp_chan *c) { return c->state; }

/* ------------------------------------------------------------------ TX */

/* the target a client set (RtpServer.set_target) replaces the destination */
static void apply_target(struct rtudp_chan *c, struct rtp_kind *k)
{
    struct rtudp_sockaddr a;
    if (!rtudp_rtp_get_target(k->area, c->area_bytes, &k->target_gen, &a))
        return;
    c->dst_len = a.family ? rtudp_to_sockaddr(&a, &c->dst) : 0;
}

/* RTP ticks in d ns (d may be negative: deadlines given out of order) */
static int64_t ticks_in(int64_t d, uint32_t rate)
{
    int64_t sec = d / 1000000000LL, rem = d % 1000000000LL;
    return sec * (int64_t)rate + rem * (int64_t)rate / 1000000000LL;
}

/* PACED: when this frame leaves; the clock skips packet times nobody filled */
static int64_t paced_time(struct rtp_kind *k, int64_t asked, int64_t now)
{
    if (!k->next_at) {
        k->next_at = asked > now ? asked : now;
    } else {
        int64_t from = asked > now ? asked : now;
        if (from - k->next_at >= k->ptime_ns) {
            int64_t missed = (from - k->next_at) / k->ptime_ns;
            rtp_gen_skip(&k->gen, (uint32_t)(missed > UINT32_MAX ? UINT32_MAX : missed));
            k->next_at += missed * k->ptime_ns;
            bump(&k->area->tx_underruns, 1);
        }
    }
    int64_t at = k->next_at;
    k->next_at += k->ptime_ns;
    /* producers leave this worker asleep for a frame it could not send before then */
    store_relaxed(&k->area->tx_next_at_ns, k->next_at);
    return at;
}

/* the generator's next values, where a successor finds them */
static void publish_gen(struct rtudp_rtp_area *a, const struct rtp_gen *g)
{
    store_relaxed(&a->tx_frac, (uint32_t)g->frac);
    store_relaxed(&a->tx_next_ts, g->ts);
    store_relaxed(&a->tx_next_seq, (uint32_t)g->seq);
}

/* TIMED: the deadline and timestamp later frames' timestamps count from */
static void timed_origin(struct rtp_kind *k, int64_t at)
{
    if (k->timed_started)
        return;
    k->timed_started = 1;
    k->t0 = at;
    k->ts0 = k->gen.ts;
    store_relaxed(&k->area->tx_t0_ns, at);
    store_relaxed(&k->area->tx_ts0, k->ts0);
    store_release(&k->area->tx_resume, RTUDP_RTP_RESUME_GEN | RTUDP_RTP_RESUME_TIMED);
}

/*
 * After a takeover: whether hdr is a header the dead worker wrote (version 2 and our
 * SSRC; clients leave the room zeroed).  Such a record keeps it, and the generator
 * moves past its sequence number should the dead worker have died before it said
 * so in the area.  The first record without one ends the takeover: the dead worker
 * numbered a prefix of the ring, and records behind it are new.
 */
static int numbered_before(struct rtp_kind *k, const uint8_t *hdr)
{
    if (!k->resumed)
        return 0;
    if (hdr[0] != 0x80 || rtp_be32(hdr + 8) != k->gen.ssrc) {
        k->resumed = 0;
        return 0;
    }
    uint16_t next = (uint16_t)(rtp_be16(hdr + 2) + 1);
    if ((int16_t)(uint16_t)(next - k->gen.seq) > 0) {
        k->gen.seq = next;
        k->gen.ts = rtp_be32(hdr + 4);
        k->gen.ts += rtp_gen_step(&k->gen);
        k->gen.marker = false;
        publish_gen(k->area, &k->gen);
    }
    return 1;
}

/*
 * PACED, taken over (a move, a restart): the first frame's time on the last worker's
 * clock, so a moved stream keeps its phase instead of starting at the move; the frame
 * of RTP time `ts` is due as far from carried_at as their timestamps are apart.  A
 * clock a ptime or more behind is a dead worker's: the stream starts anew from now.
 */
static void resume_clock(struct rtp_kind *k, uint32_t ts, int64_t now)
{
    int64_t apart = (int64_t)(int32_t)(ts - k->carried_ts) * 1000000000LL /
                    (int64_t)k->gen.clock_rate;
    int64_t at = k->carried_at + apart;
    k->carried_at = 0;
    if (at > now - k->ptime_ns)
        k->next_at = at;
}

static int rtp_tx_record(struct rtudp_chan *c, struct rtudp_tx_record *rec, uint32_t len,
                         int64_t now, struct rtudp_timer *t)
{
    struct rtp_kind *k = kind_of(c);
    apply_target(c, k);
    if (k->tx_mode == RTUDP_RTP_TX_RAW)
        return 0;
    uint8_t pt = (rec->flags & RTUDP_RTP_F_PT) ? (uint8_t)(rec->flags & RTUDP_RTP_F_PT_MASK) : k->pt;
    if (len < RTUDP_RTP_HDR_ROOM || (pt >= 72 && pt <= 76)) {
        bump(&k->area->tx_bad_records, 1);
        return -1;
    }
    uint8_t *hdr = (uint8_t *)(rec + 1); /* the record is the worker's until released */
    int64_t asked = rec->send_at_ns;
    int64_t at;
    int numbered = numbered_before(k, hdr);
    if (k->carried_at && !k->next_at && k->tx_mode == RTUDP_RTP_TX_PACED)
        resume_clock(k, numbered ? rtp_be32(hdr + 4) : k->gen.ts, now);
    if (numbered) {
        /* numbered and counted by the dead worker: it leaves as it was numbered */
        at = k->tx_mode == RTUDP_RTP_TX_PACED ? paced_time(k, asked, now) : (asked ? asked : now);
        t->send_at_ns = at > now ? at : now;
        t->asked_ns = at;
        return 0;
    }
    if (k->tx_mode == RTUDP_RTP_TX_PACED) {
        at = paced_time(k, asked, now);
    } else {
        at = asked ? asked : now;
        timed_origin(k, at);
        /* the timestamp is the frame's sampling instant: its deadline */
        k->gen.ts = k->ts0 + (uint32_t)(uint64_t)ticks_in(at - k->t0, k->gen.clock_rate);
    }
    if (rec->flags & RTUDP_RTP_F_MARKER)
        rtp_gen_set_marker(&k->gen, true);
    if (rtp_gen_header(&k->gen, hdr, pt, at) < 0) {
        bump(&k->area->tx_bad_records, 1);
        return -1;
    }
    t->send_at_ns = at > now ? at : now;
    t->asked_ns = at;
    struct rtudp_rtp_area *a = k->area;
    publish_gen(a, &k->gen);
    bump(&a->tx_frames, 1);
    return 0;
}

/* RTCP's SR: the RTP timestamp of the instant mono_ns on the clock frames are
 * stamped by (PACED: the schedule the next frame is due on; TIMED: its origin) */
static int rtp_sender(void *ctx, int64_t mono_ns, uint64_t ntp, struct rtcp_sender_info *si)
{
    struct rtp_kind *k = ctx;
    uint32_t rate = k->gen.clock_rate;
    if (k->tx_mode == RTUDP_RTP_TX_RAW)
        return 0; /* the client writes the headers: the clock is not ours */
    if (k->tx_mode == RTUDP_RTP_TX_TIMED && k->timed_started)
        si->rtp_ts = k->ts0 + (uint32_t)(uint64_t)ticks_in(mono_ns - k->t0, rate);
    else if (k->tx_mode == RTUDP_RTP_TX_PACED && k->next_at)
        si->rtp_ts = k->gen.ts + (uint32_t)(uint64_t)ticks_in(mono_ns - k->next_at, rate);
    else
        si->rtp_ts = k->gen.ts;
    si->ntp = ntp;
    return 1;
}

static int64_t rtp_tx_timer(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now)
{
    (void)w;
    struct rtp_kind *k = kind_of(c);
    apply_target(c, k); /* reports follow a target set on a channel that sends no frames */
    return rtp_rtcp_timer(c, &k->rtcp, k->gen.ssrc, now, rtp_sender, k);
}

/* ------------------------------------------------------------------ RX */

static uint8_t *buf_of(struct rtp_kind *k, uint64_t ref)
{
    return k->pool + (size_t)ref * k->buf_size;
}

static void give_back(struct rtp_kind *k, uint64_t ref)
{
    if (ref < k->n_bufs && k->n_free < k->n_bufs)
        k->free_bufs[k->n_free++] = (uint32_t)ref;
}

static void publish(struct rtp_kind *k, uint8_t *rec, uint32_t len, int64_t rx_ns)
{
    struct rtudp_rx_chan *rx = &k->c->rx;
    struct rtudp_rx_meta *m = (struct rtudp_rx_meta *)rec;
    m->rx_seq = rtudp_rx_seq_next(rx->block);
    if (rtudp_bcast_write(&rx->ring, rec, len, 0, rx_ns) != RTUDP_OK) {
        bump(&k->area->rx_published_errors, 1); /* cannot happen: sized in open */
        return;
    }
    rtudp_hist_record(&rx->block->rx_delay, rtudp_now_ns() - rx_ns);
}

/*
 * Where a successor resumes: after the frame just published.  Stored after the
 * publish, so a kill between the two can at most make a successor erase that one
 * frame again (never skip one without a word).
 */
static void note_released(struct rtudp_rtp_area *a, uint64_t next_ext, int has_ts, uint32_t ts)
{
    uint64_t flag = load_relaxed(&a->rx_resume) & RTUDP_RTP_RX_RESUME_TS;
    if (has_ts) {
        store_relaxed(&a->rx_last_ts, ts);
        flag = RTUDP_RTP_RX_RESUME_TS;
    }
    store_relaxed(&a->rx_resume, ((next_ext + 1) & ~RTUDP_RTP_RX_RESUME_TS) | flag);
}

/* the jitter buffer's frames, in order, to the RX ring */
static void emit(void *ctx, const struct rtp_jb_frame *f)
{
    struct rtp_kind *k = ctx;
    struct rtudp_rtp_area *a = k->area;
    if (f->kind == RTP_JB_PACKET) {
        uint8_t *b = buf_of(k, f->pkt.ref);
        struct rtudp_rtp_frame *fr = (struct rtudp_rtp_frame *)(b + META);
        *fr = (struct rtudp_rtp_frame){.kind = RTUDP_RTP_FRAME_PACKET, .pt = f->pkt.pt,
                                       .marker = f->pkt.marker, .seq = f->pkt.seq,
                                       .ts = f->pkt.ts, .ssrc = f->pkt.ssrc, .lseq = f->lseq,
                                       .payload_off = f->pkt.payload_off,
                                       .payload_len = f->pkt.payload_len};
        publish(k, b, PREFIX + f->pkt.len, ((struct rtudp_rx_meta *)b)->rx_ns);
        bump(&a->rx_frames, 1);
        note_released(a, f->lseq + 1, 1, f->pkt.ts);
        give_back(k, f->pkt.ref);
    } else if (f->kind == RTP_JB_ERASURE) {
        union {
            uint8_t bytes[PREFIX];
            uint64_t align;
        } u;
        memset(&u, 0, sizeof u);
        struct rtudp_rx_meta *m = (struct rtudp_rx_meta *)u.bytes;
        m->rx_ns = rtudp_now_ns(); /* declared lost now */
        struct rtudp_rtp_frame *fr = (struct rtudp_rtp_frame *)(u.bytes + META);
        fr->kind = RTUDP_RTP_FRAME_ERASURE;
        fr->lseq = f->lseq;
        fr->lseq_end = f->lseq_end;
        fr->ts_span = f->ts_span;
        publish(k, u.bytes, PREFIX, m->rx_ns);
        bump(&a->rx_erasures, 1);
        bump(&a->rx_erased, f->lseq_end - f->lseq + 1);
        note_released(a, f->lseq_end + 1, 0, 0);
    } else {
        give_back(k, f->pkt.ref); /* dropped: replaced by a restart or a new source */
    }
}

/* the jitter buffer's statistics of the current source, for stats() and rtstat */
static void export_stats(struct rtp_kind *k)
{
    struct rtp_jb_stats st;
    rtp_jbuf_stats(&k->jb, &st);
    struct rtudp_rtp_area *a = k->area;
    store_relaxed(&a->rx_ssrc, st.ssrc);
    store_relaxed(&a->rx_lost, st.lost);
    store_relaxed(&a->rx_expected, st.expected);
    store_relaxed(&a->rx_jitter, st.jitter);
    store_relaxed(&a->rx_ext_max, (uint32_t)k->jb.max_ext);
    /* a new source or epoch moves the position without a frame released */
    uint64_t next;
    if (rtp_jbuf_position(&k->jb, &next))
        note_released(a, next, 0, 0);
}

/* time mode: when the jitter buffer has a playout deadline to act on */
static int64_t next_deadline(const struct rtp_jbuf *jb, int64_t now)
{
    if (!jb->latency_ns || jb->held == 0)
        return RTUDP_PROTO_NEVER;
    if (!jb->started)
        return jb->first_arrival_ns + jb->latency_ns;
    return jb->have_gap_since ? jb->gap_since_ns + jb->latency_ns : now;
}

static void count_push(struct rtp_kind *k, int rc)
{
    struct rtudp_rtp_area *a = k->area;
    if (rc < 0)
        bump(&a->rx_invalid, 1);
    else if (rc == RTP_JB_DUP)
        bump(&a->rx_duplicates, 1);
    else if (rc == RTP_JB_LATE)
        bump(&a->rx_late, 1);
}

/* MUX: an RTCP datagram of the batch to the RTCP session (RX thread); 1 it was one */
static int take_rtcp(struct rtp_kind *k, const struct rtudp_rx_pkt *p)
{
    if (k->rtcp.mode != RTUDP_RTCP_MUX || !rtcp_is_rtcp(p->buf, p->len))
        return 0;
    if (p->flags & RTUDP_RX_TRUNC)
        bump(&k->area->rtcp_bad, 1);
    else
        rtp_rtcp_take(&k->rtcp, p->buf, p->len, rtp_rtcp_mono_to_real(p->rx_ns),
                      (const struct sockaddr *)&p->src, p->src_len);
    return 1;
}

/* a raw receiver: the datagrams as they are, RTCP (MUX) sorted out */
static void publish_raw(struct rtudp_chan *c, struct rtp_kind *k, struct rtudp_rx_pkt *pkts, int n)
{
    int from = 0;
    for (int i = 0; i < n; i++) {
        if (!take_rtcp(k, &pkts[i]))
            continue;
        if (i > from)
            rtudp_udp_publish(c, pkts + from, i - from);
        from = i + 1;
    }
    if (n > from)
        rtudp_udp_publish(c, pkts + from, n - from);
}

static void rtp_rx_batch(struct rtudp_chan *c, struct rtudp_rx_pkt *pkts, int n)
{
    struct rtp_kind *k = kind_of(c);
    if (!k->jb_on) {
        publish_raw(c, k, pkts, n);
        return;
    }
    struct rtudp_channel_block *b = c->rx.block;
    struct rtudp_rtp_area *a = k->area;
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += pkts[i].len;
    bump(&b->rx_packets, (uint64_t)n);
    bump(&b->rx_bytes, bytes);
    struct rtp_jb_stats before;
    rtp_jbuf_stats(&k->jb, &before);
    for (int i = 0; i < n; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        if (take_rtcp(k, p))
            continue;
        if ((p->flags & RTUDP_RX_TRUNC) || p->len > k->max_len) {
            bump(&b->rx_truncated, (p->flags & RTUDP_RX_TRUNC) != 0);
            bump(&a->rx_invalid, 1);
            continue;
        }
        if (k->n_free == 0) {
            bump(&a->rx_no_buffer, 1);
            continue;
        }
        uint32_t ref = k->free_bufs[--k->n_free];
        uint8_t *buf = buf_of(k, ref);
        struct rtudp_rx_meta *m = (struct rtudp_rx_meta *)buf;
        memset(m, 0, sizeof *m);
        rtudp_rx_source(p, &m->source);
        m->rx_ns = p->rx_ns;
        m->hw_ns = p->hw_raw_ns;
        m->flags = (p->flags & RTUDP_RX_KERNEL_TS) ? RTUDP_RX_SOFTWARE_STAMP : 0;
        memcpy(buf + PREFIX, p->buf, p->len);
        int rc = rtp_jbuf_push(&k->jb, buf + PREFIX, p->len, ref, p->rx_ns, emit, k);
        if (rc != RTP_JB_TAKEN)
            give_back(k, ref);
        count_push(k, rc);
    }
    /* counters the jitter buffer keeps per source: their growth in this batch */
    struct rtp_jb_stats after;
    rtp_jbuf_stats(&k->jb, &after);
    if (after.ssrc == before.ssrc && after.restarts >= before.restarts) {
        bump(&a->rx_reordered, after.reordered - before.reordered);
        bump(&a->rx_other_ssrc, after.other_ssrc - before.other_ssrc);
    } else { /* a new source: its counters started again */
        bump(&a->rx_reordered, after.reordered);
        bump(&a->rx_other_ssrc, after.other_ssrc);
    }
    /* these count on across sources (jbuf.h) */
    bump(&a->rx_restarts, after.restarts - before.restarts);
    bump(&a->rx_bad_seq, after.bad_seq - before.bad_seq);
    bump(&a->rx_probation_dropped, after.probation_dropped - before.probation_dropped);
    store_relaxed(&a->rx_held_aside, (uint32_t)k->jb.jump_held);
    export_stats(k);
    int64_t now = rtudp_now_ns();
    c->rx.timer_ns = next_deadline(&k->jb, now);
}

static int64_t rtp_rx_timer(struct rtudp_chan *c, int64_t now)
{
    struct rtp_kind *k = kind_of(c);
    if (!k->jb_on)
        return RTUDP_PROTO_NEVER;
    rtp_jbuf_poll(&k->jb, now, emit, k);
    export_stats(k);
    int64_t next = next_deadline(&k->jb, now);
    return next <= now ? now + 1000000 : next; /* a gap not yet timed: look again in 1 ms */
}

/* ------------------------------------------------------------------ open / close */

static int check_config(const struct rtudp_rtp_area *a, char *msg, size_t len)
{
    if (a->tx_mode > RTUDP_RTP_TX_RAW || a->rx_mode > RTUDP_RTP_RX_RAW)
        return snprintf(msg, len, "rtp modes tx %u rx %u unknown", a->tx_mode, a->rx_mode), -1;
    if (a->clock_rate == 0 || a->clock_rate > RTP_GEN_MAX_RATE || a->ptime_us == 0 ||
        a->ptime_us > RTP_GEN_MAX_PTIME_US)
        return snprintf(msg, len, "rtp clock %u Hz / ptime %u us out of range", a->clock_rate,
                        a->ptime_us), -1;
    if (a->payload_type > 127 || (a->payload_type >= 72 && a->payload_type <= 76))
        return snprintf(msg, len, "rtp payload type %u is not 0..127 outside 72..76",
                        a->payload_type), -1;
    if (a->jb_capacity == 0 || a->jb_capacity > RTP_JB_MAX_CAPACITY)
        return snprintf(msg, len, "rtp jitter buffer capacity %u is not 1..%u", a->jb_capacity,
                        RTP_JB_MAX_CAPACITY), -1;
    return 0;
}

/* a takeover: the jitter buffer goes on where the dead worker's stood */
static void resume_rx(struct rtp_kind *k)
{
    struct rtudp_rtp_area *a = k->area;
    uint64_t resume = load_relaxed(&a->rx_resume);
    uint64_t pos = resume & ~RTUDP_RTP_RX_RESUME_TS;
    if (pos == 0)
        return; /* no source heard yet */
    rtp_jbuf_resume(&k->jb, load_relaxed(&a->rx_ssrc), pos - 1,
                    (resume & RTUDP_RTP_RX_RESUME_TS) != 0, load_relaxed(&a->rx_last_ts));
}

static int open_rx(struct rtudp_chan *c, struct rtp_kind *k, const struct rtudp_rtp_area *a,
                   char *msg, size_t len)
{
    int rc = rtp_jbuf_init(&k->jb, a->jb_capacity, a->jb_latency_ms, a->clock_rate);
    if (rc != 0) {
        snprintf(msg, len, "rtp jitter buffer (capacity %u, latency %u ms): %s", a->jb_capacity,
                 a->jb_latency_ms, rc == RTP_E_ARG ? "bad value" : "out of memory");
        return rc == RTP_E_ARG ? RTUDP_EINVAL : RTUDP_ESYS;
    }
    k->jb_on = 1;
    /* frames leave on the buffer's clock, a latency after their kernel stamps: a read
     * a little late changes nothing while that latency is ten times the wait */
    c->rx.may_gather = (int64_t)a->jb_latency_ms * 1000000 >= 10 * RTUDP_RX_GATHER_NS;
    resume_rx(k);
    uint64_t room = c->rx.ring.max_payload > PREFIX ? c->rx.ring.max_payload - PREFIX : 0;
    uint64_t want = c->block->max_datagram ? c->block->max_datagram : RTUDP_MAX_PAYLOAD;
    k->max_len = (uint32_t)(want < room ? want : room);
    if (k->max_len < RTP_HDR_MIN) {
        snprintf(msg, len, "RX ring records of %llu bytes cannot hold an RTP frame",
                 (unsigned long long)c->rx.ring.max_payload);
        return RTUDP_EINVAL;
    }
    k->buf_size = (uint32_t)align8(PREFIX + k->max_len);
    k->n_bufs = k->jb.mask + 1 + POOL_EXTRA;
    k->pool = malloc((size_t)k->n_bufs * k->buf_size);
    k->free_bufs = malloc((size_t)k->n_bufs * sizeof *k->free_bufs);
    if (!k->pool || !k->free_bufs) {
        snprintf(msg, len, "out of memory for %u receive buffers", k->n_bufs);
        return RTUDP_ESYS;
    }
    for (uint32_t i = 0; i < k->n_bufs; i++)
        k->free_bufs[i] = k->n_bufs - 1 - i;
    k->n_free = k->n_bufs;
    /* the RX thread fills them: resident now (prefault.h) */
    rtudp_prefault(k->pool, (size_t)k->n_bufs * k->buf_size);
    rtudp_prefault(k->jb.slots, (size_t)(k->jb.mask + 1) * sizeof *k->jb.slots);
    return RTUDP_OK;
}

static void rtp_close(struct rtudp_worker *w, struct rtudp_chan *c)
{
    (void)w;
    struct rtp_kind *k = kind_of(c);
    if (!k)
        return;
    rtp_rtcp_close(c, &k->rtcp, k->gen.ssrc, rtp_sender, k);
    if (k->jb_on)
        rtp_jbuf_destroy(&k->jb, NULL, NULL); /* refs are pool indices: nothing to free */
    free(k->pool);
    free(k->free_bufs);
    free(k);
    c->state = NULL;
}

/* a takeover: the numbering the dead worker left in the area, carried on */
static void resume_gen(struct rtp_kind *k, struct rtudp_rtp_area *a)
{
    uint32_t resume = load_acquire(&a->tx_resume);
    k->gen.ssrc = load_relaxed(&a->tx_ssrc);
    k->gen.seq = (uint16_t)load_relaxed(&a->tx_next_seq);
    k->gen.ts = load_relaxed(&a->tx_next_ts);
    uint32_t frac = load_relaxed(&a->tx_frac);
    k->gen.frac = frac < 1000000u ? frac : 0; /* a fraction of a tick, in 1e-6 */
    k->gen.marker = false;
    if (resume & RTUDP_RTP_RESUME_TIMED) {
        k->timed_started = 1;
        k->t0 = load_relaxed(&a->tx_t0_ns);
        k->ts0 = load_relaxed(&a->tx_ts0);
    }
    k->resumed = 1;
}

static int rtp_open(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t len)
{
    struct rtudp_rtp_area *a = c->area;
    if (check_config(a, msg, len) != 0)
        return RTUDP_EINVAL;
    struct rtp_kind *k = calloc(1, sizeof *k);
    if (!k)
        return snprintf(msg, len, "out of memory"), RTUDP_ESYS;
    c->state = k;
    k->rtcp.fd = -1; /* no RTCP socket until rtp_rtcp_open */
    k->area = a;
    k->c = c;
    k->tx_mode = a->tx_mode;
    k->pt = (uint8_t)a->payload_type;
    k->ptime_ns = (int64_t)a->ptime_us * 1000;
    int64_t carried = load_relaxed(&a->tx_next_at_ns);
    store_relaxed(&a->tx_next_at_ns, 0); /* producers wake us until our clock runs */
    int rc = rtp_gen_init(&k->gen, a->clock_rate, a->ptime_us);
    if (rc != 0) {
        snprintf(msg, len, "rtp generator: %s", rc == RTP_E_ARG ? "bad clock/ptime"
                                                                : strerror(-rc));
        rtp_close(w, c);
        return RTUDP_EINVAL;
    }
    if (load_acquire(&a->tx_resume) & RTUDP_RTP_RESUME_GEN) {
        resume_gen(k, a);
        if (k->tx_mode == RTUDP_RTP_TX_PACED && carried > 0) {
            k->carried_at = carried; /* the next frame's time and RTP time, as left */
            k->carried_ts = k->gen.ts;
        }
    } else {
        store_relaxed(&a->tx_ssrc, k->gen.ssrc);
        publish_gen(a, &k->gen);
        store_release(&a->tx_resume, RTUDP_RTP_RESUME_GEN);
    }
    if (c->recvs && a->rx_mode == RTUDP_RTP_RX_JBUF &&
        (rc = open_rx(c, k, a, msg, len)) != RTUDP_OK) {
        rtp_close(w, c);
        return rc;
    }
    if ((rc = rtp_rtcp_open(c, &k->rtcp, a, k->gen.ssrc, msg, len)) != RTUDP_OK) {
        rtp_close(w, c);
        return rc;
    }
    return RTUDP_OK;
}

RTUDP_PROTO_DEFINE(RTP, rtp, struct rtudp_rtp_area, .open = rtp_open,
                   .tx_record = rtp_tx_record, .tx_timer = rtp_tx_timer,
                   .rx_batch = rtp_rx_batch,
                   .rx_timer = rtp_rx_timer, .close = rtp_close);
