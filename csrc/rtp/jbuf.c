/* jbuf.c - RTP jitter buffer (see jbuf.h for the behaviour). */
#include "jbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000u
#define SEQ_MOD 65536u
#define MAX_LATENCY_MS 600000u /* ten minutes */

static inline struct rtp_jb_slot *slot_of(struct rtp_jbuf *jb, uint64_t ext)
{
    return &jb->slots[ext & jb->mask];
}

static inline bool is_held(struct rtp_jbuf *jb, uint64_t ext)
{
    const struct rtp_jb_slot *s = slot_of(jb, ext);
    return s->state == SLOT_HELD && s->ext == ext;
}

static inline uint64_t nslots(const struct rtp_jbuf *jb) { return (uint64_t)jb->mask + 1; }

int rtp_jbuf_init(struct rtp_jbuf *jb, uint32_t capacity, uint32_t latency_ms, uint32_t clock_rate)
{
    if (capacity == 0 || capacity > RTP_JB_MAX_CAPACITY || latency_ms > MAX_LATENCY_MS)
        return RTP_E_ARG;
    /* room for every held packet and a window of released ones (duplicate detection) */
    uint32_t n = RTP_JB_MIN_SLOTS;
    while (n < 2 * capacity)
        n <<= 1;
    memset(jb, 0, sizeof *jb);
    jb->slots = calloc(n, sizeof *jb->slots);
    if (!jb->slots)
        return -ENOMEM;
    jb->mask = n - 1;
    jb->capacity = capacity;
    jb->latency_ns = (int64_t)latency_ms * 1000000;
    jb->clock_rate = clock_rate;
    return 0;
}

static void give_back(const struct rtp_jb_pkt *p, rtp_jb_emit_fn emit, void *ctx)
{
    if (!emit)
        return;
    struct rtp_jb_frame f = {.kind = RTP_JB_DROP, .lseq = p->seq, .pkt = *p};
    emit(ctx, &f);
}

void rtp_jbuf_destroy(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx)
{
    if (!jb->slots)
        return;
    for (uint64_t i = 0; i < nslots(jb); i++)
        if (jb->slots[i].state == SLOT_HELD)
            give_back(&jb->slots[i].pkt, emit, ctx);
    if (jb->jump_held)
        give_back(&jb->jump_pkt, emit, ctx);
    if (jb->cand_held)
        give_back(&jb->cand_pkt, emit, ctx);
    free(jb->slots);
    jb->slots = NULL;
    jb->held = 0;
}

/* ------------------------------------------------------------------ release */

static void emit_packet(struct rtp_jbuf *jb, uint64_t ext, rtp_jb_emit_fn emit, void *ctx)
{
    struct rtp_jb_slot *s = slot_of(jb, ext);
    s->state = SLOT_RELEASED; /* kept (ext, state) for duplicate detection */
    jb->held--;
    jb->last_ts = s->pkt.ts;
    jb->have_last_ts = true;
    struct rtp_jb_frame f = {.kind = RTP_JB_PACKET, .lseq = ext, .pkt = s->pkt};
    emit(ctx, &f);
}

/*
 * Erasure for [from, to): the lost packets' share of the timestamp distance from
 * the last released packet to the next one (n lost packets split n + 1 packet
 * times), in 64 bits without overflow (librtpsynth multiplied in 32 bits).
 */
static void emit_erasure(struct rtp_jbuf *jb, uint64_t from, uint64_t to, uint32_t next_ts,
                         rtp_jb_emit_fn emit, void *ctx)
{
    uint64_t n = to - from, span = 0;
    if (jb->have_last_ts) {
        uint64_t d = (uint32_t)(next_ts - jb->last_ts);
        span = d / (n + 1) * n + d % (n + 1) * n / (n + 1);
    }
    jb->st.erased += n;
    /* the slots of lost packets must not answer "released" to a late arrival */
    struct rtp_jb_frame f = {
        .kind = RTP_JB_ERASURE, .lseq = from, .lseq_end = to - 1, .ts_span = span};
    emit(ctx, &f);
}

/* releases the contiguous run at next_ext; returns how many */
static uint32_t drain(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx)
{
    uint32_t n = 0;
    while (is_held(jb, jb->next_ext)) {
        emit_packet(jb, jb->next_ext, emit, ctx);
        jb->next_ext++;
        n++;
    }
    return n;
}

/* the lowest held ext seq above next_ext (held > 0, so one exists within the window) */
static uint64_t next_held(struct rtp_jbuf *jb)
{
    uint64_t e = jb->next_ext;
    while (!is_held(jb, e))
        e++;
    return e;
}

/* the gap at next_ext is lost: erasure up to the next held packet */
static void declare_gap_lost(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx)
{
    uint64_t h = next_held(jb);
    emit_erasure(jb, jb->next_ext, h, slot_of(jb, h)->pkt.ts, emit, ctx);
    jb->next_ext = h;
}

/* arrival of the earliest held packet: when the current gap became known */
static int64_t earliest_held_arrival(struct rtp_jbuf *jb)
{
    int64_t t = INT64_MAX;
    for (uint64_t e = jb->next_ext; e <= jb->max_ext; e++)
        if (is_held(jb, e) && slot_of(jb, e)->pkt.arrival_ns < t)
            t = slot_of(jb, e)->pkt.arrival_ns;
    return t;
}

static void start(struct rtp_jbuf *jb)
{
    jb->started = true;
    jb->validated = true;
    jb->next_ext = jb->lo_ext;
}

static void release(struct rtp_jbuf *jb, int64_t now, rtp_jb_emit_fn emit, void *ctx)
{
    if (!jb->started) {
        if (!jb->validated || jb->held == 0)
            return;
        bool ready = jb->latency_ns ? now - jb->first_arrival_ns >= jb->latency_ns
                                    : jb->held >= jb->capacity;
        if (!ready)
            return;
        start(jb);
    }
    for (;;) {
        if (drain(jb, emit, ctx))
            jb->have_gap_since = false;
        if (jb->held == 0) {
            jb->have_gap_since = false;
            return;
        }
        if (jb->latency_ns) {
            if (!jb->have_gap_since) {
                jb->gap_since_ns = earliest_held_arrival(jb);
                jb->have_gap_since = true;
            }
            if (now - jb->gap_since_ns < jb->latency_ns)
                return;
        } else if (jb->held < jb->capacity) {
            return;
        }
        declare_gap_lost(jb, emit, ctx);
        jb->have_gap_since = false;
    }
}

void rtp_jbuf_poll(struct rtp_jbuf *jb, int64_t now_ns, rtp_jb_emit_fn emit, void *ctx)
{
    release(jb, now_ns, emit, ctx);
}

void rtp_jbuf_flush(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx)
{
    if (jb->held == 0)
        return;
    if (!jb->started)
        start(jb);
    for (;;) {
        drain(jb, emit, ctx);
        if (jb->held == 0)
            break;
        declare_gap_lost(jb, emit, ctx);
    }
    jb->have_gap_since = false;
}

/* ------------------------------------------------------------------ accept */

/* A.8: J += (|D| - J) / 16, kept as 16 * J in integers */
static void update_jitter(struct rtp_jbuf *jb, const struct rtp_jb_pkt *p)
{
    if (!jb->clock_rate)
        return;
    int64_t rel = p->arrival_ns - jb->first_arrival_ns;
    uint64_t r = rel > 0 ? (uint64_t)rel : 0;
    uint64_t arrival = r / NS_PER_S * jb->clock_rate + r % NS_PER_S * jb->clock_rate / NS_PER_S;
    uint32_t transit = (uint32_t)arrival - p->ts;
    if (jb->have_transit) {
        uint32_t u = transit - (uint32_t)jb->transit;
        int64_t d = u >= 0x80000000u ? (int64_t)u - 0x100000000LL : (int64_t)u;
        if (d < 0)
            d = -d;
        int64_t j = (int64_t)jb->jitter_q4;
        j += d - ((j + 8) >> 4);
        jb->jitter_q4 = j > 0 ? (uint64_t)j : 0;
    }
    jb->transit = transit;
    jb->have_transit = true;
}

static void hold(struct rtp_jbuf *jb, uint64_t ext, const struct rtp_jb_pkt *p)
{
    struct rtp_jb_slot *s = slot_of(jb, ext);
    s->ext = ext;
    s->state = SLOT_HELD;
    s->pkt = *p;
    jb->held++;
    jb->st.received++;
    update_jitter(jb, p);
}

/* A packet that lies more than the slot window ahead of next_ext: what is held
 * before it is released (gaps lost), then the rest of the distance is erased. */
static void make_room(struct rtp_jbuf *jb, uint64_t ext, uint32_t ts, rtp_jb_emit_fn emit,
                      void *ctx)
{
    while (jb->held && ext - jb->next_ext >= nslots(jb)) {
        drain(jb, emit, ctx);
        if (jb->held && ext - jb->next_ext >= nslots(jb))
            declare_gap_lost(jb, emit, ctx);
    }
    if (ext - jb->next_ext >= nslots(jb)) {
        emit_erasure(jb, jb->next_ext, ext, ts, emit, ctx);
        jb->next_ext = ext;
    }
    jb->have_gap_since = false;
}

/* a packet of the current source at extended seq `ext` */
static int accept(struct rtp_jbuf *jb, uint64_t ext, const struct rtp_jb_pkt *p, int64_t now,
                  rtp_jb_emit_fn emit, void *ctx)
{
    if (jb->started && ext < jb->next_ext) {
        const struct rtp_jb_slot *s = slot_of(jb, ext);
        if (s->state == SLOT_RELEASED && s->ext == ext) {
            jb->st.duplicates++;
            return RTP_JB_DUP;
        }
        jb->st.late++;
        return RTP_JB_LATE;
    }
    if (is_held(jb, ext)) {
        jb->st.duplicates++;
        return RTP_JB_DUP;
    }
    if (!jb->started) {
        if (ext < jb->lo_ext) {
            if (jb->max_ext - ext >= nslots(jb)) {
                jb->st.late++;
                return RTP_JB_LATE;
            }
            jb->lo_ext = ext;
            if (ext < jb->base_ext)
                jb->base_ext = ext;
        } else if (ext - jb->lo_ext >= nslots(jb)) {
            start(jb); /* the window is full: begin releasing */
        }
    }
    if (jb->started && ext - jb->next_ext >= nslots(jb))
        make_room(jb, ext, p->ts, emit, ctx);
    if (ext < jb->max_ext)
        jb->st.reordered++;
    if (ext > jb->max_ext) {
        jb->max_ext = ext;
        jb->max_seq = p->seq;
    }
    hold(jb, ext, p);
    if (!jb->validated &&
        (is_held(jb, ext - 1) || is_held(jb, ext + 1) || (!jb->latency_ns && jb->held >= jb->capacity)))
        jb->validated = true;
    release(jb, now, emit, ctx);
    return RTP_JB_TAKEN;
}

/* first packet of an epoch at `ext` (new source, restart, new SSRC) */
static void begin_epoch(struct rtp_jbuf *jb, uint64_t ext, const struct rtp_jb_pkt *p,
                        bool validated)
{
    jb->max_ext = jb->base_ext = jb->lo_ext = ext;
    jb->max_seq = p->seq;
    jb->validated = validated;
    jb->started = validated; /* a confirmed restart needs no warm-up */
    jb->next_ext = ext;
    jb->have_transit = false;
    jb->have_gap_since = false;
    jb->first_arrival_ns = p->arrival_ns;
}

/* the first ext seq of a new epoch: beyond everything so far, low 16 bits = seq */
static uint64_t next_epoch_ext(const struct rtp_jbuf *jb, uint16_t seq)
{
    return (((jb->max_ext >> 16) + 1) << 16) | seq;
}

static void end_epoch(struct rtp_jbuf *jb, rtp_jb_emit_fn emit, void *ctx)
{
    rtp_jbuf_flush(jb, emit, ctx);
    jb->st.expected += jb->max_ext - jb->base_ext + 1;
}

/* p confirmed `first` (held aside) as the start of a new epoch */
static int confirm_epoch(struct rtp_jbuf *jb, const struct rtp_jb_pkt *first,
                         const struct rtp_jb_pkt *p, int64_t now, rtp_jb_emit_fn emit, void *ctx)
{
    uint64_t e = next_epoch_ext(jb, first->seq);
    begin_epoch(jb, e, first, true);
    hold(jb, e, first);
    return accept(jb, e + 1, p, now, emit, ctx);
}

/* probation failed (A.1): forget what was held and start over with p */
static void restart_probation(struct rtp_jbuf *jb, const struct rtp_jb_pkt *p, rtp_jb_emit_fn emit,
                              void *ctx)
{
    for (uint64_t i = 0; i < nslots(jb); i++) {
        struct rtp_jb_slot *s = &jb->slots[i];
        if (s->state == SLOT_HELD) {
            give_back(&s->pkt, emit, ctx);
            jb->st.probation_dropped++;
            jb->st.received--;
        }
        s->state = SLOT_EMPTY;
    }
    jb->held = 0;
    begin_epoch(jb, p->seq, p, false);
    hold(jb, p->seq, p);
}

static int large_jump(struct rtp_jbuf *jb, const struct rtp_jb_pkt *p, int64_t now,
                      rtp_jb_emit_fn emit, void *ctx)
{
    if (!jb->validated) {
        restart_probation(jb, p, emit, ctx);
        return RTP_JB_TAKEN;
    }
    if (jb->jump_held && p->seq == jb->bad_seq) {
        /* A.1: two sequential packets after a large jump - the sender restarted */
        struct rtp_jb_pkt first = jb->jump_pkt;
        jb->jump_held = false;
        end_epoch(jb, emit, ctx);
        jb->st.restarts++;
        return confirm_epoch(jb, &first, p, now, emit, ctx);
    }
    if (jb->jump_held) {
        give_back(&jb->jump_pkt, emit, ctx);
        jb->st.bad_seq++;
    }
    jb->jump_held = true;
    jb->jump_pkt = *p;
    jb->bad_seq = (uint16_t)(p->seq + 1);
    return RTP_JB_TAKEN;
}

static int other_ssrc(struct rtp_jbuf *jb, const struct rtp_jb_pkt *p, int64_t now,
                      rtp_jb_emit_fn emit, void *ctx)
{
    jb->st.other_ssrc++;
    if (jb->cand_held && p->ssrc == jb->cand_pkt.ssrc && p->seq == (uint16_t)(jb->cand_pkt.seq + 1)) {
        /* two consecutive packets: the new source takes over */
        struct rtp_jb_pkt first = jb->cand_pkt;
        jb->cand_held = false;
        end_epoch(jb, emit, ctx);
        if (jb->jump_held) {
            give_back(&jb->jump_pkt, emit, ctx);
            jb->jump_held = false;
        }
        uint64_t restarts = jb->st.restarts + 1, invalid = jb->st.invalid;
        memset(&jb->st, 0, sizeof jb->st);
        jb->st.ssrc = first.ssrc;
        jb->st.restarts = restarts;
        jb->st.invalid = invalid;
        return confirm_epoch(jb, &first, p, now, emit, ctx);
    }
    if (jb->cand_held)
        give_back(&jb->cand_pkt, emit, ctx);
    jb->cand_held = true;
    jb->cand_pkt = *p;
    return RTP_JB_TAKEN;
}

int rtp_jbuf_push(struct rtp_jbuf *jb, const uint8_t *buf, size_t len, uint64_t ref, int64_t now,
                  rtp_jb_emit_fn emit, void *ctx)
{
    struct rtp_hdr h;
    int rc = rtp_parse(buf, len, &h);
    if (rc < 0) {
        jb->st.invalid++;
        return rc;
    }
    struct rtp_jb_pkt p = {
        .ref = ref, .arrival_ns = now, .ts = h.ts, .ssrc = h.ssrc, .payload_off = h.payload_off,
        .payload_len = h.payload_len, .len = (uint32_t)len, .seq = h.seq, .pt = h.pt,
        .marker = h.marker};
    if (!jb->have_src) {
        jb->have_src = true;
        jb->st.ssrc = h.ssrc;
        begin_epoch(jb, h.seq, &p, false);
        hold(jb, h.seq, &p);
        if (!jb->latency_ns && jb->capacity == 1)
            jb->validated = true;
        release(jb, now, emit, ctx);
        return RTP_JB_TAKEN;
    }
    if (h.ssrc != jb->st.ssrc)
        return other_ssrc(jb, &p, now, emit, ctx);
    uint16_t delta = (uint16_t)(h.seq - jb->max_seq);
    if (delta < RTP_JB_MAX_DROPOUT)
        return accept(jb, jb->max_ext + delta, &p, now, emit, ctx);
    if (delta > SEQ_MOD - RTP_JB_MAX_MISORDER) {
        uint64_t back = SEQ_MOD - delta;
        if (back > jb->max_ext) { /* before the very first sequence number */
            jb->st.late++;
            return RTP_JB_LATE;
        }
        return accept(jb, jb->max_ext - back, &p, now, emit, ctx);
    }
    return large_jump(jb, &p, now, emit, ctx);
}

bool rtp_jbuf_position(const struct rtp_jbuf *jb, uint64_t *next_ext)
{
    if (!jb->have_src)
        return false;
    *next_ext = jb->started ? jb->next_ext : jb->lo_ext;
    return true;
}

void rtp_jbuf_resume(struct rtp_jbuf *jb, uint32_t ssrc, uint64_t next_ext, bool have_last_ts,
                     uint32_t last_ts)
{
    jb->have_src = jb->validated = jb->started = true;
    jb->st.ssrc = ssrc;
    /* no packet is held at next_ext: the first one at or past it is accepted as the
     * continuation, one before it is late */
    jb->max_ext = jb->base_ext = jb->lo_ext = jb->next_ext = next_ext;
    jb->max_seq = (uint16_t)next_ext;
    jb->have_last_ts = have_last_ts;
    jb->last_ts = last_ts;
}

void rtp_jbuf_stats(const struct rtp_jbuf *jb, struct rtp_jb_stats *out)
{
    *out = jb->st;
    if (jb->have_src)
        out->expected += jb->max_ext - jb->base_ext + 1;
    out->lost = (int64_t)out->expected - (int64_t)out->received;
    out->jitter = jb->jitter_q4 >> 4;
}
