/*
 * test_rtp_kind.c - the rtp channel kind's hooks (csrc/proto/rtp.c) on a channel
 * built in memory: headers written in place, paced and timed send times, the
 * underrun clock skip, the jitter buffer's frames in the RX ring (ordered, erasure,
 * invalid counted), the time-mode RX timer, and the send target's seqlock.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

/* harness.h and the worker's shm_access.h both define align8(): the harness's is
 * renamed here, this test uses the engine's */
#define align8 harness_align8
#include "harness.h"
#undef align8
#include "ring_fixture.h"
#include "proto/rtp_area.h"
#include "rtp/header.h"
#include "worker.h"

#define MS 1000000LL

struct fixture {
    struct rtudp_chan c;
    struct rtudp_channel_block block;
    struct rtudp_rtp_area area;
    struct rtudp_bcast_ring *ring;
    struct rtudp_bcast_reader rd;
};

static void setup(struct fixture *f, uint32_t tx_mode, uint32_t latency_ms, int recvs)
{
    memset(f, 0, sizeof *f);
    f->area = (struct rtudp_rtp_area){.tx_mode = tx_mode, .rx_mode = RTUDP_RTP_RX_JBUF,
                                      .clock_rate = 8000, .ptime_us = 20000,
                                      .jb_capacity = 8, .jb_latency_ms = latency_ms,
                                      .payload_type = 0};
    f->block.max_datagram = 512;
    struct rtudp_chan *c = &f->c;
    c->block = &f->block;
    c->area = &f->area;
    c->area_bytes = sizeof f->area;
    c->proto = rtudp_proto_find(RTUDP_KIND_RTP);
    CHECK(c->proto != NULL);
    c->recvs = recvs;
    if (recvs) {
        c->rx.ring = bcast_new(1 << 16);
        f->ring = c->rx.ring.ring;
        rtudp_bcast_reader_init(&c->rx.ring, &f->rd, 1);
        c->rx.block = &f->block;
    }
    char msg[160] = "";
    int rc = c->proto->open(NULL, c, msg, sizeof msg);
    if (rc != RTUDP_OK)
        fprintf(stderr, "open: %s\n", msg);
    CHECK_EQ(rc, RTUDP_OK);
}

static void teardown(struct fixture *f)
{
    f->c.proto->close(NULL, &f->c);
    free(f->ring);
}

/* one TX record: 12 bytes of header room + payload; returns the timer the kind set */
static struct rtudp_timer frame(struct fixture *f, uint8_t *mem, int64_t asked, int64_t now,
                                uint16_t flags, int *rc)
{
    struct rtudp_tx_record *rec = (struct rtudp_tx_record *)mem;
    rec->flags = flags;
    rec->send_at_ns = asked;
    memset(rec + 1, 0, RTUDP_RTP_HDR_ROOM);
    memcpy((uint8_t *)(rec + 1) + RTUDP_RTP_HDR_ROOM, "pay", 3);
    struct rtudp_timer t = {.send_at_ns = asked > now ? asked : now, .asked_ns = asked};
    *rc = f->c.proto->tx_record(&f->c, rec, RTUDP_RTP_HDR_ROOM + 3, now, &t);
    return t;
}

static void test_paced_headers_and_spacing(void)
{
    struct fixture f;
    setup(&f, RTUDP_RTP_TX_PACED, 0, 0);
    _Alignas(8) uint8_t mem[4][64];
    int64_t now = 1000 * MS;
    int rc;
    int64_t at[4];
    for (int i = 0; i < 4; i++) {
        at[i] = frame(&f, mem[i], 0, now, i == 2 ? (RTUDP_RTP_F_PT | 8) : 0, &rc).send_at_ns;
        CHECK_EQ(rc, 0);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(at[i], now + i * 20 * MS); /* queued at once, sent one ptime apart */
    /* the clock producers read: a frame queued now leaves no earlier than this */
    CHECK_EQ(f.area.tx_next_at_ns, now + 4 * 20 * MS);
    uint8_t *h0 = mem[0] + sizeof(struct rtudp_tx_record), *h1 = h0 + 64, *h2 = h1 + 64;
    CHECK_EQ(h0[0], 0x80);
    CHECK_EQ(h0[1], 0x80);   /* marker on the first frame, PT 0 */
    CHECK_EQ(h1[1], 0x00);
    CHECK_EQ(h2[1], 8);      /* the record's PT */
    CHECK_EQ((uint16_t)(rtp_be16(h1 + 2) - rtp_be16(h0 + 2)), 1);
    CHECK_EQ(rtp_be32(h1 + 4) - rtp_be32(h0 + 4), 160u);
    CHECK_EQ(rtp_be32(h0 + 8), f.area.tx_ssrc);
    CHECK(memcmp(h0 + 12, "pay", 3) == 0); /* payload untouched */
    CHECK_EQ(f.area.tx_frames, 4u);
    /* an underrun: 10 packet times with nothing; the clock skips them, marker set */
    uint32_t ts_before = rtp_be32(h2 + 4) + 160; /* the 4th frame's timestamp */
    CHECK_EQ(rtp_be32(mem[3] + sizeof(struct rtudp_tx_record) + 4), ts_before);
    struct rtudp_timer t = frame(&f, mem[0], 0, now + 4 * 20 * MS + 10 * 20 * MS, 0, &rc);
    CHECK_EQ(t.send_at_ns, now + 14 * 20 * MS);
    CHECK_EQ(f.area.tx_next_at_ns, now + 15 * 20 * MS);
    CHECK_EQ(h0[1], 0x80);
    CHECK_EQ(rtp_be32(h0 + 4) - ts_before, 11u * 160u);
    CHECK_EQ(f.area.tx_underruns, 1u);
    /* too short for the header room, or an RTCP payload type: refused and counted */
    struct rtudp_tx_record *rec = (struct rtudp_tx_record *)mem[1];
    CHECK(f.c.proto->tx_record(&f.c, rec, 5, now, &t) != 0);
    frame(&f, mem[1], 0, now, RTUDP_RTP_F_PT | 72, &rc);
    CHECK(rc != 0);
    CHECK_EQ(f.area.tx_bad_records, 2u);
    teardown(&f);
}

static void test_timed_timestamps_follow_deadlines(void)
{
    struct fixture f;
    setup(&f, RTUDP_RTP_TX_TIMED, 0, 0);
    _Alignas(8) uint8_t mem[64];
    int rc;
    int64_t t0 = 5000 * MS;
    int64_t offs[] = {0, 7 * MS, 3 * MS, 1000 * MS};
    uint32_t ts0 = 0;
    for (int i = 0; i < 4; i++) {
        struct rtudp_timer t = frame(&f, mem, t0 + offs[i], t0 - MS, 0, &rc);
        CHECK_EQ(rc, 0);
        CHECK_EQ(t.send_at_ns, t0 + offs[i]);
        uint32_t ts = rtp_be32(mem + sizeof(struct rtudp_tx_record) + 4);
        if (i == 0)
            ts0 = ts;
        CHECK_EQ(ts - ts0, (uint32_t)(offs[i] / 125000)); /* 8 kHz: 125 us a tick */
    }
    teardown(&f);
}

static int read_frame(struct fixture *f, struct rtudp_rtp_frame *fr, uint8_t *data,
                      uint32_t *dlen)
{
    uint8_t buf[2048];
    uint32_t len;
    uint64_t seq, lost;
    int64_t tns;
    uint16_t flags;
    int rc = rtudp_bcast_read(&f->c.rx.ring, &f->rd, buf, sizeof buf, &len, &seq, &tns, &flags,
                              &lost);
    if (rc != RTUDP_OK)
        return rc;
    CHECK(len >= sizeof(struct rtudp_rx_meta) + sizeof *fr);
    memcpy(fr, buf + sizeof(struct rtudp_rx_meta), sizeof *fr);
    *dlen = len - (uint32_t)(sizeof(struct rtudp_rx_meta) + sizeof *fr);
    memcpy(data, buf + sizeof(struct rtudp_rx_meta) + sizeof *fr, *dlen);
    return RTUDP_OK;
}

static void push(struct fixture *f, const uint8_t *d, uint32_t len, int64_t rx_ns)
{
    uint8_t room[RTUDP_RX_META_ROOM + 256];
    CHECK(len <= 256);
    memcpy(room + RTUDP_RX_META_ROOM, d, len);
    struct rtudp_rx_pkt p = {.buf = room + RTUDP_RX_META_ROOM, .cap = 256, .len = len,
                             .rx_ns = rx_ns};
    struct sockaddr_in *s = (struct sockaddr_in *)&p.src;
    s->sin_family = AF_INET;
    s->sin_port = htons(4000);
    p.src_len = sizeof *s;
    f->c.proto->rx_batch(&f->c, &p, 1);
}

static uint32_t rtp(uint8_t *out, uint16_t seq)
{
    out[0] = 0x80;
    out[1] = 0;
    rtp_put16(out + 2, seq);
    rtp_put32(out + 4, (uint32_t)seq * 160u);
    rtp_put32(out + 8, 0x5555);
    memcpy(out + 12, "abcd", 4);
    return 16;
}

static void test_rx_orders_erases_and_counts_invalid(void)
{
    struct fixture f;
    setup(&f, RTUDP_RTP_TX_PACED, 50, 1);
    uint8_t d[64], data[2048];
    uint32_t dlen;
    int64_t t = 100 * MS;
    uint16_t order[] = {10, 11, 13, 12, 15}; /* 14 lost */
    for (unsigned i = 0; i < 5; i++)
        push(&f, d, rtp(d, order[i]), t + i * MS);
    push(&f, (const uint8_t *)"bad", 3, t + 6 * MS);
    CHECK_EQ(f.area.rx_invalid, 1u);
    struct rtudp_rtp_frame fr;
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_EMPTY); /* latency not yet passed */
    /* the first release: latency after the first packet; the gap at 14 waits */
    int64_t next = f.c.proto->rx_timer(&f.c, t + 50 * MS);
    uint16_t want[] = {10, 11, 12, 13};
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
        CHECK_EQ(fr.kind, RTUDP_RTP_FRAME_PACKET);
        CHECK_EQ(fr.seq, want[i]);
        CHECK_EQ(dlen, 16u);
        CHECK(memcmp(data + fr.payload_off, "abcd", 4) == 0 && fr.payload_len == 4);
    }
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_EMPTY);
    CHECK(next > t + 50 * MS && next <= t + 4 * MS + 50 * MS); /* 15's playout deadline */
    f.c.proto->rx_timer(&f.c, next);
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
    CHECK_EQ(fr.kind, RTUDP_RTP_FRAME_ERASURE);
    CHECK_EQ(fr.lseq, fr.lseq_end);
    CHECK_EQ(fr.ts_span, 160u);
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
    CHECK_EQ(fr.seq, 15);
    CHECK_EQ(f.area.rx_frames, 5u);
    CHECK_EQ(f.area.rx_erasures, 1u);
    CHECK_EQ(f.area.rx_erased, 1u);
    CHECK_EQ(f.area.rx_reordered, 1u);
    CHECK_EQ(f.area.rx_ssrc, 0x5555u);
    CHECK_EQ(f.block.rx_packets, 6u);
    /* a duplicate of something released is counted and not delivered */
    push(&f, d, rtp(d, 12), t + 200 * MS);
    CHECK_EQ(f.area.rx_duplicates + f.area.rx_late, 1u);
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_EMPTY);
    teardown(&f);
}

/* A worker that takes a receiving channel over (close, then open on the same area)
 * resumes the jitter buffer where the dead one stood: the frames the dead one held
 * behind a gap, never released, are erased with the gap; extended sequence numbers
 * and the erasure's timestamp span go on as before. */
static void test_rx_takeover_erases_what_the_dead_worker_held(void)
{
    struct fixture f;
    setup(&f, RTUDP_RTP_TX_PACED, 50, 1);
    uint8_t d[64], data[2048];
    uint32_t dlen;
    int64_t t = 100 * MS;
    uint16_t before[] = {10, 11, 12, 14, 15}; /* 13 lost: 14 and 15 wait behind it */
    for (unsigned i = 0; i < 5; i++)
        push(&f, d, rtp(d, before[i]), t + i * MS);
    f.c.proto->rx_timer(&f.c, t + 50 * MS);
    struct rtudp_rtp_frame fr;
    uint64_t lseq10 = 0;
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
        CHECK_EQ(fr.seq, before[i]);
        if (i == 0)
            lseq10 = fr.lseq;
    }
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_EMPTY); /* 14, 15 held */
    /* the worker dies (its buffers with it); a successor opens the same area */
    struct rtudp_bcast_ring *ring = f.ring;
    f.c.proto->close(NULL, &f.c); /* writes nothing to the area, as a SIGKILL */
    char msg[160] = "";
    CHECK_EQ(f.c.proto->open(NULL, &f.c, msg, sizeof msg), RTUDP_OK);
    CHECK(f.ring == ring);
    push(&f, d, rtp(d, 16), t + 100 * MS);
    push(&f, d, rtp(d, 17), t + 101 * MS);
    f.c.proto->rx_timer(&f.c, t + 200 * MS);
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
    CHECK_EQ(fr.kind, RTUDP_RTP_FRAME_ERASURE);
    CHECK_EQ(fr.lseq, lseq10 + 3);          /* 13, 14, 15: the gap and what was held */
    CHECK_EQ(fr.lseq_end, lseq10 + 5);
    CHECK_EQ(fr.ts_span, 3u * 160u);        /* from 12's timestamp, kept for the successor */
    for (uint16_t s = 16; s <= 17; s++) {
        CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_OK);
        CHECK_EQ(fr.kind, RTUDP_RTP_FRAME_PACKET);
        CHECK_EQ(fr.seq, s);
        CHECK_EQ(fr.lseq, lseq10 + (s - 10));
    }
    CHECK_EQ(f.area.rx_frames, 5u);
    CHECK_EQ(f.area.rx_erased, 3u);
    /* one from before the takeover point is late, never delivered twice */
    push(&f, d, rtp(d, 11), t + 300 * MS);
    CHECK_EQ(f.area.rx_late, 1u);
    CHECK_EQ(read_frame(&f, &fr, data, &dlen), RTUDP_EMPTY);
    teardown(&f);
}

/* Packets far off the sequence that no next packet confirms as a sender restart are
 * given up and counted (rx_bad_seq); the one still waiting shows in rx_held_aside */
static void test_far_jumps_are_counted(void)
{
    struct fixture f;
    setup(&f, RTUDP_RTP_TX_PACED, 50, 1);
    uint8_t d[64];
    int64_t t = 100 * MS;
    uint16_t order[] = {10, 11, 30000, 12, 40000, 13};
    for (unsigned i = 0; i < 6; i++)
        push(&f, d, rtp(d, order[i]), t + i * MS);
    CHECK_EQ(f.area.rx_bad_seq, 1u);    /* 30000, replaced by 40000 */
    CHECK_EQ(f.area.rx_held_aside, 1u); /* 40000 waits for 40001 */
    CHECK_EQ(f.block.rx_packets, 6u);
    f.c.proto->rx_timer(&f.c, t + 100 * MS);
    CHECK_EQ(f.area.rx_frames, 4u);
    CHECK_EQ(f.area.rx_frames + f.area.rx_bad_seq + f.area.rx_held_aside, f.block.rx_packets);
    teardown(&f);
}

static void test_target_seqlock(void)
{
    struct rtudp_rtp_area a;
    memset(&a, 0, sizeof a);
    struct rtudp_sockaddr in = {.family = AF_INET, .port = 5004, .addr = {127, 0, 0, 9}}, out;
    uint64_t gen = 0;
    CHECK_EQ(rtudp_rtp_get_target(&a, sizeof a, &gen, &out), 0); /* never set */
    CHECK_EQ(rtudp_rtp_set_target(&a, sizeof a, &in), RTUDP_OK);
    CHECK_EQ(rtudp_rtp_get_target(&a, sizeof a, &gen, &out), 1);
    CHECK(out.family == AF_INET && out.port == 5004 && memcmp(out.addr, in.addr, 16) == 0);
    CHECK_EQ(rtudp_rtp_get_target(&a, sizeof a, &gen, &out), 0); /* no change since */
    a.target_gen |= 1; /* a writer in the middle: readers wait, writers time out */
    CHECK_EQ(rtudp_rtp_get_target(&a, sizeof a, &gen, &out), 0);
    CHECK_EQ(rtudp_rtp_set_target(&a, sizeof a, &in), RTUDP_ETIMEDOUT);
    struct rtudp_sockaddr bad = {.family = 99};
    CHECK_EQ(rtudp_rtp_set_target(&a, sizeof a, &bad), RTUDP_EINVAL);
    CHECK_EQ(rtudp_rtp_set_target(&a, sizeof a - 1, &in), RTUDP_EINVAL);
}

static void test_bad_config_is_refused(void)
{
    struct rtudp_chan c;
    struct rtudp_rtp_area a = {.tx_mode = 7, .clock_rate = 8000, .ptime_us = 20000,
                               .jb_capacity = 8};
    memset(&c, 0, sizeof c);
    c.area = &a;
    c.area_bytes = sizeof a;
    const struct rtudp_proto *p = rtudp_proto_find(RTUDP_KIND_RTP);
    char msg[160] = "";
    CHECK_EQ(p->open(NULL, &c, msg, sizeof msg), RTUDP_EINVAL);
    CHECK(strstr(msg, "tx 7") != NULL);
    a.tx_mode = 0;
    a.payload_type = 74;
    CHECK_EQ(p->open(NULL, &c, msg, sizeof msg), RTUDP_EINVAL);
    CHECK(strstr(msg, "74") != NULL);
    CHECK(c.state == NULL);
}

/* one more frame; *hdr points at the header the kind wrote (or kept) */
static uint8_t *hdr_of(uint8_t *mem) { return mem + sizeof(struct rtudp_tx_record); }

/* A worker that takes the channel over (close, then open on the same area, as a
 * restart does) carries the numbering on: the same SSRC; records the dead worker
 * numbered keep their headers, also when it died before it said so in the area;
 * new records follow them, one sequence number each. */
static void test_takeover_keeps_the_numbering(uint32_t tx_mode)
{
    struct fixture f;
    setup(&f, tx_mode, 0, 0);
    _Alignas(8) uint8_t mem[6][64];
    int64_t now = 1000 * MS;
    int rc;
    for (int i = 0; i < 4; i++) { /* numbered; say 0 and 1 left, 2 and 3 did not */
        frame(&f, mem[i], tx_mode == RTUDP_RTP_TX_TIMED ? now + i * 20 * MS : 0, now, 0, &rc);
        CHECK_EQ(rc, 0);
    }
    uint32_t ssrc = f.area.tx_ssrc;
    uint16_t seq0 = rtp_be16(hdr_of(mem[0]) + 2);
    uint32_t ts0 = rtp_be32(hdr_of(mem[0]) + 4);
    /* the dead worker wrote frame 3's header but not the area's next values */
    f.area.tx_next_seq = (uint16_t)(seq0 + 3);
    f.area.tx_next_ts = ts0 + 3 * 160;
    f.c.proto->close(NULL, &f.c);
    char msg[160] = "";
    f.area.tx_next_at_ns = now + 10 * 1000 * MS; /* the dead worker's clock, far ahead */
    CHECK_EQ(f.c.proto->open(NULL, &f.c, msg, sizeof msg), RTUDP_OK);
    CHECK_EQ(f.area.tx_ssrc, ssrc);
    /* not the successor's: producers must not leave it asleep by that clock */
    CHECK_EQ(f.area.tx_next_at_ns, 0);
    uint8_t before[2][12];
    memcpy(before[0], hdr_of(mem[2]), 12);
    memcpy(before[1], hdr_of(mem[3]), 12);
    /* the successor reads records 2 and 3 again (frame() would zero their room) */
    for (int i = 2; i < 4; i++) {
        struct rtudp_tx_record *rec = (struct rtudp_tx_record *)mem[i];
        struct rtudp_timer t = {0};
        CHECK_EQ(f.c.proto->tx_record(&f.c, rec, RTUDP_RTP_HDR_ROOM + 3, now + 200 * MS, &t), 0);
        CHECK(memcmp(hdr_of(mem[i]), before[i - 2], 12) == 0); /* kept as numbered */
        CHECK(t.send_at_ns >= now + 200 * MS);
    }
    uint64_t frames = f.area.tx_frames;
    CHECK_EQ(frames, 4u); /* counted once, by the dead worker */
    for (int i = 4; i < 6; i++) { /* new ones follow */
        frame(&f, mem[i], tx_mode == RTUDP_RTP_TX_TIMED ? now + i * 20 * MS : 0,
              now + 200 * MS, 0, &rc);
        CHECK_EQ(rc, 0);
        uint8_t *h = hdr_of(mem[i]);
        CHECK_EQ(rtp_be16(h + 2), (uint16_t)(seq0 + i));
        CHECK_EQ(rtp_be32(h + 4), ts0 + (uint32_t)i * 160u);
        CHECK_EQ(rtp_be32(h + 8), ssrc);
        CHECK_EQ(h[1] & 0x80, 0); /* no talkspurt: the same stream */
    }
    CHECK_EQ(f.area.tx_frames, 6u);
    CHECK_EQ(f.area.tx_next_seq, (uint16_t)(seq0 + 6));
    teardown(&f);
}

static void test_takeover_paced(void) { test_takeover_keeps_the_numbering(RTUDP_RTP_TX_PACED); }
static void test_takeover_timed(void) { test_takeover_keeps_the_numbering(RTUDP_RTP_TX_TIMED); }

/* a first open starts a numbering of its own (nothing in the area to carry on) */
static void test_first_open_numbers_afresh(void)
{
    struct fixture a, b;
    setup(&a, RTUDP_RTP_TX_PACED, 0, 0);
    setup(&b, RTUDP_RTP_TX_PACED, 0, 0);
    CHECK_EQ(a.area.tx_resume, RTUDP_RTP_RESUME_GEN);
    CHECK(a.area.tx_ssrc != b.area.tx_ssrc); /* random: equal once in 2^32 */
    teardown(&a);
    teardown(&b);
}

static const struct test tests[] = {
    T(test_paced_headers_and_spacing),
    T(test_timed_timestamps_follow_deadlines),
    T(test_rx_orders_erases_and_counts_invalid),
    T(test_rx_takeover_erases_what_the_dead_worker_held),
    T(test_far_jumps_are_counted),
    T(test_target_seqlock),
    T(test_bad_config_is_refused),
    T(test_takeover_paced),
    T(test_takeover_timed),
    T(test_first_open_numbers_afresh),
};

HARNESS_MAIN(tests)
