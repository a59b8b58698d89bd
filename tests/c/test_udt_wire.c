/*
 * test_udt_wire.c - UDT4 packets (csrc/udt/udt_wire.c): golden byte vectors
 * written by hand from the field list (a handshake request and response, full,
 * short and light ACKs, NAKs, data, the padded types), round trips of every
 * packet type, every truncated length of every control packet, random bytes,
 * and each error code.  Parsed input is copied into a buffer of exactly its
 * length so ASan catches any read past the datagram.
 */
#include "udt/udt_seq.h"
#include "udt/udt_wire.h"

#include "harness.h"

/* parse from an exact-size heap copy */
static int parse_exact(const uint8_t *p, size_t len, struct udt_pkt *out)
{
    uint8_t *q = malloc(len ? len : 1);
    CHECK(q != NULL);
    if (len)
        memcpy(q, p, len);
    int rc = udt_parse(q, len, out);
    free(q);
    return rc;
}

#define HDR(w0a, w0b, w0c, w0d, info, dst)                                                         \
    w0a, w0b, w0c, w0d, (uint8_t)((info) >> 24), (uint8_t)((info) >> 16), (uint8_t)((info) >> 8),   \
        (uint8_t)(info), 0, 0, 0, 0, (uint8_t)((dst) >> 24), (uint8_t)((dst) >> 16),               \
        (uint8_t)((dst) >> 8), (uint8_t)(dst)

/* ------------------------------------------------------------------ golden */

/* Client's first request to 127.0.0.1: STREAM, ISN 0x12345678, MSS 1500, flow
 * window 8192, type 1, socket id 0x2A3B4C5D, cookie 0; destination 0. */
static const uint8_t HS_REQ[64] = {
    0x80, 0x00, 0x00, 0x00, /* control, type 0 handshake */
    0x00, 0x00, 0x00, 0x00, /* additional info */
    0x00, 0x00, 0x00, 0x00, /* timestamp (libudt: 0) */
    0x00, 0x00, 0x00, 0x00, /* destination socket id 0: a connection request */
    0x00, 0x00, 0x00, 0x04, /* version 4 */
    0x00, 0x00, 0x00, 0x01, /* socket type 1 STREAM */
    0x12, 0x34, 0x56, 0x78, /* initial sequence number */
    0x00, 0x00, 0x05, 0xDC, /* MSS 1500 */
    0x00, 0x00, 0x20, 0x00, /* flow window 8192 */
    0x00, 0x00, 0x00, 0x01, /* connection type 1: request */
    0x2A, 0x3B, 0x4C, 0x5D, /* socket id */
    0x00, 0x00, 0x00, 0x00, /* SYN cookie */
    0x01, 0x00, 0x00, 0x7F, /* peer IP 127.0.0.1, each 4-byte group reversed (x86 libudt) */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* Server's response: type -1, its socket id 0x0BADF00D, the client's ISN,
 * MSS 1400 (the smaller), its flow window 25600, the cookie 0xDEADBEEF echoed,
 * the client's address 10.1.2.3; sent to the client's id. */
static const uint8_t HS_RES[64] = {
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x2A, 0x3B, 0x4C, 0x5D, /* destination: the client */
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,
    0x12, 0x34, 0x56, 0x78, /* the client's ISN, adopted */
    0x00, 0x00, 0x05, 0x78, /* MSS 1400 */
    0x00, 0x00, 0x64, 0x00, /* flow window 25600 */
    0xFF, 0xFF, 0xFF, 0xFF, /* connection type -1: response */
    0x0B, 0xAD, 0xF0, 0x0D, /* the server's socket id */
    0xDE, 0xAD, 0xBE, 0xEF, /* cookie */
    0x03, 0x02, 0x01, 0x0A, /* 10.1.2.3 reversed */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void golden_handshake_request(void)
{
    struct udt_pkt p;
    CHECK_EQ(parse_exact(HS_REQ, sizeof HS_REQ, &p), UDT_OK);
    CHECK(p.is_ctrl);
    CHECK_EQ(p.ctrl.type, UDT_CT_HANDSHAKE);
    CHECK_EQ(p.ctrl.dst_id, 0);
    const struct udt_handshake *h = &p.ctrl.u.hs;
    CHECK_EQ(h->version, 4);
    CHECK_EQ(h->sock_type, UDT_SOCK_STREAM);
    CHECK_EQ(h->isn, 0x12345678);
    CHECK_EQ(h->mss, 1500);
    CHECK_EQ(h->flow_window, 8192);
    CHECK_EQ(h->conn_type, UDT_HS_REQUEST);
    CHECK_EQ(h->sock_id, 0x2A3B4C5D);
    CHECK_EQ(h->cookie, 0);
    uint8_t ip[4];
    CHECK_EQ(udt_hs_ip_to_addr(4, h->peer_ip, ip), UDT_OK);
    CHECK(ip[0] == 127 && ip[1] == 0 && ip[2] == 0 && ip[3] == 1);

    struct udt_handshake b = {.version = 4, .sock_type = 1, .isn = 0x12345678, .mss = 1500,
                              .flow_window = 8192, .conn_type = 1, .sock_id = 0x2A3B4C5D};
    const uint8_t lo[4] = {127, 0, 0, 1};
    CHECK_EQ(udt_hs_ip_from_addr(4, lo, b.peer_ip), UDT_OK);
    CHECK_EQ(b.peer_ip[0], 0x0100007F);
    uint8_t out[64];
    CHECK_EQ(udt_build_handshake(out, sizeof out, 0, 0, &b), 64);
    CHECK(memcmp(out, HS_REQ, 64) == 0);
}

static void golden_handshake_response(void)
{
    struct udt_pkt p;
    CHECK_EQ(parse_exact(HS_RES, sizeof HS_RES, &p), UDT_OK);
    const struct udt_handshake *h = &p.ctrl.u.hs;
    CHECK_EQ(p.ctrl.dst_id, 0x2A3B4C5D);
    CHECK_EQ(h->conn_type, UDT_HS_RESPONSE);
    CHECK_EQ(h->sock_id, 0x0BADF00D);
    CHECK_EQ(h->cookie, 0xDEADBEEF);
    CHECK_EQ(h->mss, 1400);
    CHECK_EQ(h->flow_window, 25600);
    uint8_t ip[4];
    udt_hs_ip_to_addr(4, h->peer_ip, ip);
    CHECK(ip[0] == 10 && ip[1] == 1 && ip[2] == 2 && ip[3] == 3);
    uint8_t out[64];
    CHECK_EQ(udt_build_handshake(out, sizeof out, 0x2A3B4C5D, 0, h), 64);
    CHECK(memcmp(out, HS_RES, 64) == 0);
    /* the reject: only the connection type differs */
    struct udt_handshake r = *h;
    r.conn_type = UDT_HS_REJECT;
    CHECK_EQ(udt_build_handshake(out, sizeof out, 0x2A3B4C5D, 0, &r), 64);
    CHECK(out[36] == 0x00 && out[37] == 0x00 && out[38] == 0x03 && out[39] == 0xEA); /* 1002 */
    CHECK(memcmp(out, HS_RES, 36) == 0 && memcmp(out + 40, HS_RES + 40, 24) == 0);
}

static void golden_ipv6_words(void)
{
    const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint32_t w[4];
    CHECK_EQ(udt_hs_ip_from_addr(6, a, w), UDT_OK);
    CHECK_EQ(w[0], 0xb80d0120);
    CHECK_EQ(w[3], 0x01000000);
    uint8_t back[16];
    CHECK_EQ(udt_hs_ip_to_addr(6, w, back), UDT_OK);
    CHECK(memcmp(a, back, 16) == 0);
    CHECK_EQ(udt_hs_ip_from_addr(5, a, w), UDT_E_ARG);
}

/* Full ACK number 7 to socket 0x01020304: ack seq 0x00ABCDEF, RTT 100000 µs,
 * variance 50000, 8192 packets free, receiving 10000/s, capacity 50000/s. */
static const uint8_t ACK_FULL[40] = {
    HDR(0x80, 0x02, 0x00, 0x00, 7, 0x01020304),
    0x00, 0xAB, 0xCD, 0xEF, 0x00, 0x01, 0x86, 0xA0, 0x00, 0x00, 0xC3, 0x50,
    0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x27, 0x10, 0x00, 0x00, 0xC3, 0x50,
};

static void golden_ack(void)
{
    struct udt_pkt p;
    CHECK_EQ(parse_exact(ACK_FULL, sizeof ACK_FULL, &p), UDT_OK);
    CHECK_EQ(p.ctrl.type, UDT_CT_ACK);
    CHECK_EQ(p.ctrl.info, 7);
    CHECK_EQ(p.ctrl.dst_id, 0x01020304);
    const struct udt_ack *a = &p.ctrl.u.ack;
    CHECK_EQ(a->kind, UDT_ACK_FULL);
    CHECK_EQ(a->ack_seq, 0xABCDEF);
    CHECK_EQ(a->rtt_us, 100000);
    CHECK_EQ(a->rtt_var_us, 50000);
    CHECK_EQ(a->avail_buf, 8192);
    CHECK_EQ(a->rcv_rate, 10000);
    CHECK_EQ(a->capacity, 50000);
    uint8_t out[64];
    CHECK_EQ(udt_build_ack(out, sizeof out, 0x01020304, 0, 7, a), 40);
    CHECK(memcmp(out, ACK_FULL, 40) == 0);

    /* short: the first 16 body bytes */
    CHECK_EQ(parse_exact(ACK_FULL, 32, &p), UDT_OK);
    CHECK_EQ(p.ctrl.u.ack.kind, UDT_ACK_SHORT);
    CHECK_EQ(p.ctrl.u.ack.avail_buf, 8192);
    CHECK_EQ(p.ctrl.u.ack.rcv_rate, 0);
    CHECK_EQ(udt_build_ack(out, sizeof out, 0x01020304, 0, 7, &p.ctrl.u.ack), 32);
    CHECK(memcmp(out, ACK_FULL, 32) == 0);

    /* light: ack seq only, libudt leaves the ACK number 0 */
    static const uint8_t LIGHT[20] = {HDR(0x80, 0x02, 0x00, 0x00, 0, 0x01020304), 0x00, 0xAB,
                                      0xCD, 0xEF};
    CHECK_EQ(parse_exact(LIGHT, sizeof LIGHT, &p), UDT_OK);
    CHECK_EQ(p.ctrl.u.ack.kind, UDT_ACK_LIGHT);
    CHECK_EQ(p.ctrl.u.ack.ack_seq, 0xABCDEF);
    CHECK_EQ(udt_build_ack(out, sizeof out, 0x01020304, 0, 99, &p.ctrl.u.ack), 20);
    CHECK(memcmp(out, LIGHT, 20) == 0);
}

/* NAK to 0x0A0B0C0D: 5..9 as a range, 12 alone, and 0x7FFFFFFE..1 across the wrap */
static const uint8_t NAK[36] = {
    HDR(0x80, 0x03, 0x00, 0x00, 0, 0x0A0B0C0D),
    0x80, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x0C,
    0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x00, 0x01,
};

static void golden_nak(void)
{
    struct udt_pkt p;
    CHECK_EQ(parse_exact(NAK, sizeof NAK, &p), UDT_OK);
    CHECK_EQ(p.ctrl.type, UDT_CT_NAK);
    CHECK_EQ(p.ctrl.u.nak.nwords, 5);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 0), 0x80000005u);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 1), 9);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 2), 12);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 3), 0xFFFFFFFEu);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 4), 1);
    CHECK_EQ(udt_nak_word(NAK, &p.ctrl, 5), 0); /* out of range: 0, no read */
    const uint32_t w[5] = {0x80000005u, 9, 12, 0xFFFFFFFEu, 1};
    uint8_t out[64];
    CHECK_EQ(udt_build_nak(out, sizeof out, 0x0A0B0C0D, 0, w, 5), 36);
    CHECK(memcmp(out, NAK, 36) == 0);
}

static void golden_padded_types(void)
{
    uint8_t out[64];
    static const uint8_t KA[20] = {HDR(0x80, 0x01, 0x00, 0x00, 0, 0x11223344), 0, 0, 0, 0};
    CHECK_EQ(udt_build_empty(out, sizeof out, UDT_CT_KEEPALIVE, 0x11223344, 0), 20);
    CHECK(memcmp(out, KA, 20) == 0);
    static const uint8_t SD[20] = {HDR(0x80, 0x05, 0x00, 0x00, 0, 0x11223344), 0, 0, 0, 0};
    CHECK_EQ(udt_build_empty(out, sizeof out, UDT_CT_SHUTDOWN, 0x11223344, 0), 20);
    CHECK(memcmp(out, SD, 20) == 0);
    static const uint8_t A2[20] = {HDR(0x80, 0x06, 0x00, 0x00, 12345, 0x11223344), 0, 0, 0, 0};
    CHECK_EQ(udt_build_ack2(out, sizeof out, 0x11223344, 0, 12345), 20);
    CHECK(memcmp(out, A2, 20) == 0);
    static const uint8_t ER[20] = {HDR(0x80, 0x08, 0x00, 0x00, 4000, 0x11223344), 0, 0, 0, 0};
    CHECK_EQ(udt_build_error(out, sizeof out, 0x11223344, 0, 4000), 20);
    CHECK(memcmp(out, ER, 20) == 0);
    static const uint8_t CW[20] = {HDR(0x80, 0x04, 0x00, 0x00, 0, 0x11223344), 0, 0, 0, 0};
    CHECK_EQ(udt_build_empty(out, sizeof out, UDT_CT_CONGESTION, 0x11223344, 0), 20);
    CHECK(memcmp(out, CW, 20) == 0);
    /* message drop request: message 77 (with libudt's boundary bits above), 100..120 */
    static const uint8_t DR[24] = {HDR(0x80, 0x07, 0x00, 0x00, 0xC000004Du, 0x11223344),
                                   0, 0, 0, 100, 0, 0, 0, 120};
    struct udt_pkt p;
    CHECK_EQ(parse_exact(DR, sizeof DR, &p), UDT_OK);
    CHECK_EQ(p.ctrl.u.drop.msgno, 77);
    CHECK_EQ(p.ctrl.u.drop.first, 100);
    CHECK_EQ(p.ctrl.u.drop.last, 120);
    CHECK_EQ(udt_build_dropreq(out, sizeof out, 0x11223344, 0, 77, 100, 120), 24);
    CHECK(memcmp(out + 8, DR + 8, 16) == 0 && out[7] == 77 && out[4] == 0);
    /* the padded types parse with and without their pad */
    for (uint16_t t = 1; t <= 8; t++) {
        if (t == UDT_CT_ACK || t == UDT_CT_NAK || t == UDT_CT_DROPREQ)
            continue;
        uint8_t b[20] = {HDR(0x80, (uint8_t)t, 0x00, 0x00, 0, 1), 0, 0, 0, 0};
        CHECK_EQ(parse_exact(b, 20, &p), UDT_OK);
        CHECK_EQ(p.ctrl.type, t);
        CHECK_EQ(parse_exact(b, 16, &p), UDT_OK);
        CHECK_EQ(parse_exact(b, 18, &p), UDT_E_TRUNC);
    }
}

/* Data: seq 0x7FFFFFFF, solo message 42 with and without in-order, ts 1000 µs */
static void golden_data(void)
{
    static const uint8_t D[20] = {0x7F, 0xFF, 0xFF, 0xFF, 0xC0, 0x00, 0x00, 0x2A, 0x00, 0x00,
                                  0x03, 0xE8, 0x00, 0x00, 0x00, 0x09, 'a', 'b', 'c', 'd'};
    struct udt_pkt p;
    CHECK_EQ(parse_exact(D, sizeof D, &p), UDT_OK);
    CHECK(!p.is_ctrl);
    CHECK_EQ(p.data.seq, 0x7FFFFFFF);
    CHECK_EQ(p.data.boundary, UDT_PB_SOLO);
    CHECK(!p.data.inorder);
    CHECK_EQ(p.data.msgno, 42);
    CHECK_EQ(p.data.timestamp, 1000);
    CHECK_EQ(p.data.dst_id, 9);
    CHECK_EQ(p.data.payload_len, 4);
    uint8_t out[32];
    CHECK_EQ(udt_build_data(out, sizeof out, &p.data, (const uint8_t *)"abcd", 4), 20);
    CHECK(memcmp(out, D, 20) == 0);
    struct udt_data d = p.data;
    d.inorder = true;
    d.boundary = UDT_PB_FIRST;
    d.msgno = UDT_MSG_MAX;
    CHECK_EQ(udt_build_data_hdr(out, sizeof out, &d), 16);
    CHECK(out[4] == 0xBF && out[5] == 0xFF && out[6] == 0xFF && out[7] == 0xFF); /* 10 1 1...1 */
    d.boundary = UDT_PB_LAST;
    d.inorder = false;
    d.msgno = 1;
    udt_build_data_hdr(out, sizeof out, &d);
    CHECK(out[4] == 0x40 && out[7] == 0x01);
    uint32_t dst;
    CHECK_EQ(udt_peek_dst(D, 16, &dst), UDT_OK);
    CHECK_EQ(dst, 9);
    CHECK_EQ(udt_peek_dst(D, 15, &dst), UDT_E_SHORT);
}

/* ------------------------------------------------------------------ round trips */

/* every packet kind the library builds, in one list */
static int build_kind(int k, uint8_t *out, size_t cap, uint64_t *seed)
{
    uint32_t dst = (uint32_t)splitmix64(seed), r = (uint32_t)splitmix64(seed);
    switch (k) {
    case 0: {
        struct udt_handshake h = {.version = 4, .sock_type = 2, .isn = r & UDT_SEQ_MAX,
                                  .mss = 1500, .flow_window = 8192, .conn_type = -2,
                                  .sock_id = r ^ 0x55, .cookie = r * 3u};
        for (int i = 0; i < 4; i++)
            h.peer_ip[i] = (uint32_t)splitmix64(seed);
        return udt_build_handshake(out, cap, dst, 0, &h);
    }
    case 1: return udt_build_empty(out, cap, UDT_CT_KEEPALIVE, dst, r);
    case 2: case 3: case 4: {
        struct udt_ack a = {.kind = (uint8_t)(k - 2), .ack_seq = r & UDT_SEQ_MAX, .rtt_us = r >> 8,
                            .rtt_var_us = r >> 9, .avail_buf = r >> 10, .rcv_rate = r >> 11,
                            .capacity = r >> 12};
        if (a.kind == UDT_ACK_LIGHT)
            a.rtt_us = a.rtt_var_us = a.avail_buf = a.rcv_rate = a.capacity = 0;
        else if (a.kind == UDT_ACK_SHORT)
            a.rcv_rate = a.capacity = 0;
        return udt_build_ack(out, cap, dst, 0, a.kind == UDT_ACK_LIGHT ? 0 : r >> 1, &a);
    }
    case 5: {
        uint32_t w[6] = {0x80000000u | (r & UDT_SEQ_MAX), udt_seq_add(r, 10), udt_seq_add(r, 20),
                         0x80000000u | udt_seq_add(r, 30), udt_seq_add(r, 30), udt_seq_add(r, 50)};
        return udt_build_nak(out, cap, dst, 0, w, 6);
    }
    case 6: return udt_build_empty(out, cap, UDT_CT_CONGESTION, dst, 0);
    case 7: return udt_build_empty(out, cap, UDT_CT_SHUTDOWN, dst, 0);
    case 8: return udt_build_ack2(out, cap, dst, 0, r & UDT_ACKNO_MAX);
    case 9: return udt_build_dropreq(out, cap, dst, 0, r & UDT_MSG_MAX, r & UDT_SEQ_MAX,
                                     udt_seq_add(r, 5));
    case 10: return udt_build_error(out, cap, dst, 0, r);
    case 11: return udt_build_user(out, cap, dst, 0, 0x1234, r, (const uint8_t *)"user body", 9);
    case 12: {
        struct udt_data d = {.seq = r & UDT_SEQ_MAX, .boundary = (uint8_t)(r & 3),
                             .inorder = (r >> 2) & 1, .msgno = r & UDT_MSG_MAX, .timestamp = r * 7u,
                             .dst_id = dst};
        uint8_t pl[40];
        fill(pl, sizeof pl, r);
        return udt_build_data(out, cap, &d, pl, sizeof pl);
    }
    }
    return -100;
}
#define NKINDS 13

/* rebuild a parsed packet: identical bytes */
static int rebuild(const struct udt_pkt *p, const uint8_t *orig, uint8_t *out, size_t cap)
{
    if (!p->is_ctrl)
        return udt_build_data(out, cap, &p->data, orig + UDT_HDR_LEN, p->data.payload_len);
    const struct udt_ctrl *c = &p->ctrl;
    switch (c->type) {
    case UDT_CT_HANDSHAKE: return udt_build_handshake(out, cap, c->dst_id, c->timestamp, &c->u.hs);
    case UDT_CT_KEEPALIVE: case UDT_CT_CONGESTION: case UDT_CT_SHUTDOWN:
        return udt_build_empty(out, cap, c->type, c->dst_id, c->timestamp);
    case UDT_CT_ACK: return udt_build_ack(out, cap, c->dst_id, c->timestamp, c->info, &c->u.ack);
    case UDT_CT_ACK2: return udt_build_ack2(out, cap, c->dst_id, c->timestamp, c->info);
    case UDT_CT_ERROR: return udt_build_error(out, cap, c->dst_id, c->timestamp, c->info);
    case UDT_CT_DROPREQ:
        return udt_build_dropreq(out, cap, c->dst_id, c->timestamp, c->u.drop.msgno,
                                 c->u.drop.first, c->u.drop.last);
    case UDT_CT_NAK: {
        uint32_t w[64];
        CHECK(c->u.nak.nwords <= 64);
        for (uint32_t i = 0; i < c->u.nak.nwords; i++)
            w[i] = udt_nak_word(orig, c, i);
        return udt_build_nak(out, cap, c->dst_id, c->timestamp, w, c->u.nak.nwords);
    }
    case UDT_CT_USER:
        return udt_build_user(out, cap, c->dst_id, c->timestamp, c->ext_type, c->info,
                              orig + c->body_off, c->body_len);
    }
    return -100;
}

static void round_trip_every_type(void)
{
    uint64_t seed = 1;
    for (int rep = 0; rep < 200; rep++)
        for (int k = 0; k < NKINDS; k++) {
            uint8_t a[128], b[128];
            int n = build_kind(k, a, sizeof a, &seed);
            CHECK(n >= 16);
            struct udt_pkt p;
            CHECK_EQ(parse_exact(a, (size_t)n, &p), UDT_OK);
            CHECK_EQ(p.is_ctrl, k != 12);
            int m = rebuild(&p, a, b, sizeof b);
            CHECK_EQ(m, n);
            CHECK(memcmp(a, b, (size_t)n) == 0);
            /* too small an output buffer: refused, nothing beyond cap written */
            uint8_t *small = malloc((size_t)n - 1);
            CHECK(small != NULL);
            CHECK_EQ(rebuild(&p, a, small, (size_t)n - 1), UDT_E_NOSPACE);
            free(small);
        }
}

/* ------------------------------------------------------------------ hostile input */

/* Every length 0..64 of every control packet (and of a data packet): parses
 * cleanly or fails with the code that length deserves; never reads past it. */
static void every_truncated_length(void)
{
    uint64_t seed = 7;
    for (int k = 0; k < NKINDS; k++) {
        uint8_t a[128];
        int n = build_kind(k, a, sizeof a, &seed);
        CHECK(n > 0);
        for (size_t len = 0; len <= 64; len++) {
            uint8_t src[128] = {0};
            memcpy(src, a, (size_t)n);
            struct udt_pkt p;
            int rc = parse_exact(src, len, &p);
            if (len < UDT_HDR_LEN) {
                CHECK_EQ(rc, UDT_E_SHORT);
                continue;
            }
            size_t body = len - UDT_HDR_LEN;
            if (len == (size_t)n) {
                CHECK_EQ(rc, UDT_OK);
                continue;
            }
            switch (k) {
            case 0: CHECK_EQ(rc, body < 48 ? UDT_E_TRUNC : UDT_E_LONG); break;
            case 1: case 6: case 7: case 8: case 10:
                if (body == 0)
                    CHECK_EQ(rc, UDT_OK);
                else
                    CHECK_EQ(rc, body < 4 ? UDT_E_TRUNC : UDT_E_LONG);
                break;
            case 2: case 3: case 4: /* ACK: 4, 16, 24 are lengths it has */
                if (body == 4 || body == 16 || body == 24)
                    CHECK(rc == UDT_OK || rc == UDT_E_RANGE);
                else
                    CHECK_EQ(rc, body > 24 ? UDT_E_LONG : UDT_E_TRUNC);
                break;
            case 5: /* NAK: zero bytes after the 6 words, or a cut range */
                if (body == 0)
                    CHECK_EQ(rc, UDT_E_TRUNC);
                else if (body % 4)
                    CHECK_EQ(rc, UDT_E_NAK);
                else if (body == 4 || body == 16) /* ends on a range start */
                    CHECK_EQ(rc, UDT_E_NAK);
                else
                    CHECK_EQ(rc, UDT_OK);
                break;
            case 9: CHECK_EQ(rc, body < 8 ? UDT_E_TRUNC : UDT_E_LONG); break;
            case 11: case 12: CHECK_EQ(rc, UDT_OK); break;
            default: CHECK(0);
            }
        }
    }
}

static void random_bytes(void)
{
    uint64_t seed = 0xC0FFEE;
    int ok = 0, bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint8_t b[96];
        size_t len = (size_t)rnd(&seed, sizeof b + 1);
        fill(b, (uint32_t)len, splitmix64(&seed));
        /* steer half of them to real control types so the body parsers run */
        if (len >= 4 && (i & 1)) {
            b[0] = 0x80;
            b[1] = (uint8_t)rnd(&seed, 10);
        }
        struct udt_pkt p;
        int rc = parse_exact(b, len, &p);
        CHECK(rc <= 0 && rc >= UDT_E_NAK);
        if (rc == UDT_OK) {
            ok++;
            if (p.is_ctrl && p.ctrl.type == UDT_CT_NAK) {
                for (uint32_t w = 0; w < p.ctrl.u.nak.nwords; w++)
                    (void)udt_nak_word(b, &p.ctrl, w);
            }
        } else {
            bad++;
        }
        CHECK(udt_strerror(rc)[0] != 0);
    }
    printf("random datagrams: %d parsed, %d refused\n", ok, bad);
    CHECK(ok > 1000 && bad > 1000);
}

static void each_error_code(void)
{
    struct udt_pkt p;
    uint8_t b[64] = {HDR(0x80, 0x09, 0x00, 0x00, 0, 1)};
    CHECK_EQ(parse_exact(b, 20, &p), UDT_E_TYPE); /* type 9 */
    b[0] = 0xFF;
    b[1] = 0xFE; /* type 0x7FFE */
    CHECK_EQ(parse_exact(b, 16, &p), UDT_E_TYPE);
    b[1] = 0xFF; /* 0x7FFF user: any body */
    CHECK_EQ(parse_exact(b, 23, &p), UDT_OK);
    CHECK_EQ(p.ctrl.type, UDT_CT_USER);
    CHECK_EQ(p.ctrl.body_len, 7);

    /* ACK of 8 bytes: no such length */
    uint8_t a[64];
    memcpy(a, ACK_FULL, 40);
    CHECK_EQ(parse_exact(a, 24, &p), UDT_E_TRUNC);
    /* a negative RTT, a sequence number with bit 31, an ACK number with bit 31 */
    a[20] = 0x80;
    CHECK_EQ(parse_exact(a, 40, &p), UDT_E_RANGE);
    memcpy(a, ACK_FULL, 40);
    a[16] = 0x80;
    CHECK_EQ(parse_exact(a, 40, &p), UDT_E_RANGE);
    memcpy(a, ACK_FULL, 40);
    a[4] = 0x80;
    CHECK_EQ(parse_exact(a, 40, &p), UDT_E_RANGE);
    CHECK_EQ(parse_exact(a, 20, &p), UDT_OK); /* a light ACK's ACK number is not read */
    memcpy(a, ACK_FULL, 40);
    memset(a + 40, 0, 4);
    CHECK_EQ(parse_exact(a, 44, &p), UDT_E_LONG);

    /* NAKs: a range start at the end, a range end before its start, a range
     * end with the start bit, a length not a multiple of 4 */
    uint8_t n[64];
    memcpy(n, NAK, 36);
    CHECK_EQ(parse_exact(n, 32, &p), UDT_E_NAK);
    n[19] = 0x0A; /* 10..9 */
    CHECK_EQ(parse_exact(n, 36, &p), UDT_E_NAK);
    memcpy(n, NAK, 36);
    n[20] = 0x80;
    CHECK_EQ(parse_exact(n, 36, &p), UDT_E_NAK);
    CHECK_EQ(parse_exact(NAK, 34, &p), UDT_E_NAK);
    const uint32_t bad_words[2] = {0x80000009u, 5};
    CHECK_EQ(udt_nak_check(bad_words, 2), UDT_E_NAK);
    uint8_t out[64];
    CHECK_EQ(udt_build_nak(out, sizeof out, 1, 0, bad_words, 2), UDT_E_ARG);
    CHECK_EQ(udt_build_nak(out, sizeof out, 1, 0, bad_words, 0), UDT_E_ARG);

    /* handshake: ISN with bit 31; the connection type is any int */
    uint8_t h[64];
    memcpy(h, HS_REQ, 64);
    h[24] = 0x92;
    CHECK_EQ(parse_exact(h, 64, &p), UDT_E_RANGE);
    memcpy(h, HS_REQ, 64);
    h[36] = 0x80;
    h[37] = h[38] = h[39] = 0;
    CHECK_EQ(parse_exact(h, 64, &p), UDT_OK);
    CHECK_EQ(p.ctrl.u.hs.conn_type, INT32_MIN);

    /* drop request with last before first */
    static const uint8_t DR[24] = {HDR(0x80, 0x07, 0x00, 0x00, 1, 1), 0, 0, 0, 100, 0, 0, 0, 99};
    CHECK_EQ(parse_exact(DR, 24, &p), UDT_E_RANGE);
    CHECK_EQ(udt_build_dropreq(out, sizeof out, 1, 0, 1, 100, 99), UDT_E_ARG);

    /* builders refuse out-of-range fields */
    struct udt_data d = {.seq = 0x80000000u};
    CHECK_EQ(udt_build_data_hdr(out, sizeof out, &d), UDT_E_ARG);
    d.seq = 0;
    d.msgno = UDT_MSG_MAX + 1;
    CHECK_EQ(udt_build_data_hdr(out, sizeof out, &d), UDT_E_ARG);
    struct udt_ack ack = {.kind = 3};
    CHECK_EQ(udt_build_ack(out, sizeof out, 1, 0, 1, &ack), UDT_E_ARG);
    ack.kind = UDT_ACK_FULL;
    ack.rtt_us = 0x80000000u;
    CHECK_EQ(udt_build_ack(out, sizeof out, 1, 0, 1, &ack), UDT_E_ARG);
    CHECK_EQ(udt_build_empty(out, sizeof out, UDT_CT_ACK, 1, 0), UDT_E_ARG);
    CHECK_EQ(udt_build_ack2(out, sizeof out, 1, 0, 0x80000000u), UDT_E_ARG);
    for (int c = 0; c >= UDT_E_FULL; c--)
        CHECK(strcmp(udt_strerror(c), "unknown error") != 0);
    CHECK(strcmp(udt_ctrl_name(UDT_CT_ACK2), "ack2") == 0);
}

static const struct test tests[] = {
    T(golden_handshake_request),
    T(golden_handshake_response),
    T(golden_ipv6_words),
    T(golden_ack),
    T(golden_nak),
    T(golden_padded_types),
    T(golden_data),
    T(round_trip_every_type),
    T(every_truncated_length),
    T(random_bytes),
    T(each_error_code),
};

HARNESS_MAIN(tests)
