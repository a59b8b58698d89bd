/* udt_hs.c - UDT4 handshake state machines (see udt_hs.h). */
#include "udt_hs.h"

#include <string.h>

#include "udt_seq.h"
#include "udt_timers.h"

/* ------------------------------------------------------------ SipHash-2-4 */

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                                  \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                                  \
    } while (0)

uint64_t udt_siphash24(const uint8_t key[16], const uint8_t *msg, size_t len)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le64(msg + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)(len & 0xFF) << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)msg[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xFF;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------ helpers */

static bool config_ok(const struct udt_hs_config *cfg, bool need_id)
{
    if (cfg->sock_type != UDT_SOCK_STREAM && cfg->sock_type != UDT_SOCK_DGRAM)
        return false;
    if (cfg->mss < UDT_MIN_MSS || cfg->mss > UDT_MAX_MSS || cfg->flow_window == 0)
        return false;
    if (need_id && (cfg->sock_id == 0 || cfg->isn > UDT_SEQ_MAX))
        return false;
    return true;
}

/* the fields of a peer's handshake we rely on */
static bool fields_ok(const struct udt_handshake *hs)
{
    return hs->mss >= UDT_MIN_MSS && hs->mss <= UDT_MAX_MSS && hs->flow_window >= 1 &&
           hs->sock_id != 0;
}

static uint32_t clamp_window(const struct udt_hs_config *cfg, uint32_t w)
{
    uint32_t max = cfg->max_flow_window ? cfg->max_flow_window : (1u << 30);
    return w > max ? max : w;
}

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static int send_hs(uint8_t *out, size_t cap, uint32_t dst, const struct udt_handshake *hs)
{
    return udt_build_handshake(out, cap, dst, 0, hs);
}

static void addr_words(const struct udt_addr *a, uint32_t w[4])
{
    if (udt_hs_ip_from_addr(a->family, a->ip, w) != UDT_OK)
        memset(w, 0, 4 * sizeof *w);
}

/* ------------------------------------------------------------ connecting side */

int udt_hs_connect(struct udt_hs_conn *c, const struct udt_hs_config *cfg, bool rendezvous,
                   const struct udt_addr *peer, uint64_t now_us, uint8_t *out, size_t cap)
{
    memset(c, 0, sizeof *c);
    if (!config_ok(cfg, true))
        return UDT_E_ARG;
    c->cfg = *cfg;
    c->rendezvous = rendezvous;
    c->req.version = UDT_VERSION;
    c->req.sock_type = cfg->sock_type;
    c->req.isn = cfg->isn;
    c->req.mss = cfg->mss;
    c->req.flow_window = cfg->flow_window;
    c->req.conn_type = rendezvous ? UDT_HS_RENDEZVOUS : UDT_HS_REQUEST;
    c->req.sock_id = cfg->sock_id;
    c->req.cookie = 0;
    addr_words(peer, c->req.peer_ip);
    c->req_dst = 0;
    c->state = UDT_HSS_REQUEST;
    c->last_send_us = now_us;
    uint64_t t = cfg->timeout_us ? cfg->timeout_us : UDT_CONNECT_TIMEOUT_US * (rendezvous ? 10u : 1u);
    c->deadline_us = now_us + t;
    return send_hs(out, cap, c->req_dst, &c->req);
}

static void complete(struct udt_hs_conn *c)
{
    c->result.peer_id = c->res.sock_id;
    c->result.isn_send = c->req.isn;
    c->result.isn_recv = c->res.isn;
    c->result.mss = min_u32(c->res.mss, c->cfg.mss);
    c->result.peer_flow_window = clamp_window(&c->cfg, c->res.flow_window);
    memcpy(c->result.self_ip, c->res.peer_ip, sizeof c->result.self_ip);
    c->state = UDT_HSS_CONNECTED;
}

static int ignore(struct udt_hs_conn *c)
{
    c->ignored++;
    return 0;
}

static int resend(struct udt_hs_conn *c, uint64_t now_us, uint8_t *out, size_t cap)
{
    c->last_send_us = now_us;
    return send_hs(out, cap, c->req_dst, &c->req);
}

static int client_on_hs(struct udt_hs_conn *c, const struct udt_ctrl *p, uint64_t now_us, uint8_t *out,
                        size_t cap)
{
    const struct udt_handshake *hs = &p->u.hs;
    /* everything a server sends a client echoes or adopts our ISN */
    if (hs->isn != c->req.isn)
        return ignore(c);
    switch (hs->conn_type) {
    case UDT_HS_REQUEST: /* the cookie reply: repeat the request with the cookie */
        if (p->dst_id != c->cfg.sock_id)
            return ignore(c);
        c->req.conn_type = UDT_HS_RESPONSE;
        c->req.cookie = hs->cookie;
        c->state = UDT_HSS_RESPONSE;
        return resend(c, now_us, out, cap);
    case UDT_HS_REJECT:
        if (p->dst_id != c->cfg.sock_id)
            return ignore(c);
        c->res = *hs;
        c->have_res = true;
        c->state = UDT_HSS_REJECTED;
        return 0;
    case UDT_HS_RESPONSE:
        if (!fields_ok(hs))
            return ignore(c);
        c->res = *hs;
        c->have_res = true;
        complete(c);
        return 0;
    default:
        return ignore(c);
    }
}

static int rendezvous_on_hs(struct udt_hs_conn *c, const struct udt_ctrl *p, uint64_t now_us,
                            uint8_t *out, size_t cap)
{
    const struct udt_handshake *hs = &p->u.hs;
    int32_t t = hs->conn_type;
    if (t == UDT_HS_REJECT) {
        c->res = *hs;
        c->have_res = true;
        c->state = UDT_HSS_REJECTED;
        return 0;
    }
    if (t != UDT_HS_RENDEZVOUS && t != UDT_HS_RESPONSE && t != UDT_HS_RENDEZVOUS_REPLY)
        return ignore(c); /* 1: a regular client must not talk to a rendezvous socket */
    if (!fields_ok(hs))
        return ignore(c);
    /* a connected libudt peer's -2 reply leaves version and type 0 */
    bool described = hs->version != 0 || hs->sock_type != 0;
    if (described && (hs->version != UDT_VERSION || hs->sock_type != c->cfg.sock_type)) {
        struct udt_handshake rej = c->req;
        rej.conn_type = UDT_HS_REJECT;
        c->res = *hs;
        c->have_res = true;
        c->state = UDT_HSS_REJECTED;
        return send_hs(out, cap, hs->sock_id, &rej);
    }
    c->res = *hs;
    c->have_res = true;
    c->req_dst = hs->sock_id;
    if (c->req.conn_type == UDT_HS_RENDEZVOUS || t == UDT_HS_RENDEZVOUS) {
        c->req.conn_type = UDT_HS_RESPONSE;
        c->state = UDT_HSS_RESPONSE;
        return resend(c, now_us, out, cap);
    }
    complete(c);
    return 0;
}

int udt_hs_on_packet(struct udt_hs_conn *c, const struct udt_pkt *pkt, uint64_t now_us, uint8_t *out,
                     size_t cap)
{
    if (c->state != UDT_HSS_REQUEST && c->state != UDT_HSS_RESPONSE)
        return 0;
    if (cap < UDT_HS_OUT_MAX)
        return UDT_E_NOSPACE;
    bool is_hs = pkt->is_ctrl && pkt->ctrl.type == UDT_CT_HANDSHAKE;
    if (!is_hs) {
        /* rendezvous: data or a keep-alive after a real handshake from the
         * peer means it is connected already (libudt connect(response)) */
        bool traffic = !pkt->is_ctrl || pkt->ctrl.type == UDT_CT_KEEPALIVE;
        uint32_t dst = pkt->is_ctrl ? pkt->ctrl.dst_id : pkt->data.dst_id;
        if (c->rendezvous && traffic && c->have_res && c->res.sock_type != 0 &&
            dst == c->cfg.sock_id) {
            complete(c);
            return 0;
        }
        return ignore(c);
    }
    if (pkt->ctrl.dst_id != 0 && pkt->ctrl.dst_id != c->cfg.sock_id)
        return ignore(c);
    if (c->rendezvous)
        return rendezvous_on_hs(c, &pkt->ctrl, now_us, out, cap);
    return client_on_hs(c, &pkt->ctrl, now_us, out, cap);
}

int udt_hs_on_timer(struct udt_hs_conn *c, uint64_t now_us, uint8_t *out, size_t cap)
{
    if (c->state != UDT_HSS_REQUEST && c->state != UDT_HSS_RESPONSE)
        return 0;
    if (now_us >= c->deadline_us) {
        c->state = UDT_HSS_TIMEOUT;
        return 0;
    }
    if (now_us - c->last_send_us < UDT_CONNECT_RETRY_US)
        return 0;
    return resend(c, now_us, out, cap);
}

uint64_t udt_hs_next_timer_us(const struct udt_hs_conn *c)
{
    if (c->state != UDT_HSS_REQUEST && c->state != UDT_HSS_RESPONSE)
        return UINT64_MAX;
    uint64_t r = c->last_send_us + UDT_CONNECT_RETRY_US;
    return r < c->deadline_us ? r : c->deadline_us;
}

/* ------------------------------------------------------------ listener */

int udt_hs_listener_init(struct udt_hs_listener *l, const struct udt_hs_config *cfg,
                         const uint8_t secret[16], uint64_t now_us)
{
    memset(l, 0, sizeof *l);
    if (!config_ok(cfg, false))
        return UDT_E_ARG;
    l->cfg = *cfg;
    memcpy(l->secret, secret, sizeof l->secret);
    l->start_us = now_us;
    return UDT_OK;
}

static uint32_t cookie_at(const struct udt_hs_listener *l, const struct udt_addr *a, uint64_t slice)
{
    uint8_t m[1 + 16 + 2 + 8];
    m[0] = a->family;
    memcpy(m + 1, a->ip, 16);
    m[17] = (uint8_t)(a->port >> 8);
    m[18] = (uint8_t)a->port;
    for (int i = 0; i < 8; i++)
        m[19 + i] = (uint8_t)(slice >> (8 * i));
    uint64_t h = udt_siphash24(l->secret, m, sizeof m);
    return (uint32_t)h ^ (uint32_t)(h >> 32);
}

static uint64_t slice_of(const struct udt_hs_listener *l, uint64_t now_us)
{
    return now_us > l->start_us ? (now_us - l->start_us) / UDT_COOKIE_SLICE_US : 0;
}

uint32_t udt_hs_cookie(const struct udt_hs_listener *l, const struct udt_addr *from, uint64_t now_us)
{
    return cookie_at(l, from, slice_of(l, now_us));
}

int udt_hs_listen(const struct udt_hs_listener *l, const struct udt_ctrl *p,
                  const struct udt_addr *from, uint64_t now_us, uint8_t *out, size_t cap,
                  int *out_len, struct udt_hs_accept *acc)
{
    *out_len = 0;
    if (p->type != UDT_CT_HANDSHAKE)
        return UDT_LS_IGNORE;
    struct udt_handshake hs = p->u.hs;
    if (!fields_ok(&hs))
        return UDT_LS_IGNORE;
    uint64_t slice = slice_of(l, now_us);
    if (hs.conn_type == UDT_HS_REQUEST) {
        /* no state is kept: the reply is the request with our cookie */
        hs.cookie = cookie_at(l, from, slice);
        int n = send_hs(out, cap, hs.sock_id, &hs);
        if (n < 0)
            return n;
        *out_len = n;
        return UDT_LS_COOKIE;
    }
    if (hs.conn_type != UDT_HS_RESPONSE)
        return UDT_LS_IGNORE;
    if (hs.cookie != cookie_at(l, from, slice) &&
        (slice == 0 || hs.cookie != cookie_at(l, from, slice - 1)))
        return UDT_LS_IGNORE;
    if (hs.version != UDT_VERSION || hs.sock_type != l->cfg.sock_type) {
        hs.conn_type = UDT_HS_REJECT;
        int n = send_hs(out, cap, hs.sock_id, &hs);
        if (n < 0)
            return n;
        *out_len = n;
        return UDT_LS_REJECT;
    }
    acc->peer_id = hs.sock_id;
    acc->isn = hs.isn;
    acc->mss = min_u32(hs.mss, l->cfg.mss);
    acc->peer_flow_window = clamp_window(&l->cfg, hs.flow_window);
    acc->cookie = hs.cookie;
    memcpy(acc->self_ip, hs.peer_ip, sizeof acc->self_ip);
    addr_words(from, acc->peer_ip);
    return UDT_LS_ACCEPT;
}

int udt_hs_build_response(uint8_t *out, size_t cap, const struct udt_hs_listener *l, uint32_t sock_id,
                          const struct udt_hs_accept *acc)
{
    struct udt_handshake hs = {
        .version = UDT_VERSION,
        .sock_type = l->cfg.sock_type,
        .isn = acc->isn,
        .mss = acc->mss,
        .flow_window = l->cfg.flow_window,
        .conn_type = UDT_HS_RESPONSE,
        .sock_id = sock_id,
        .cookie = acc->cookie,
    };
    memcpy(hs.peer_ip, acc->peer_ip, sizeof hs.peer_ip);
    return send_hs(out, cap, acc->peer_id, &hs);
}

void udt_hs_accept_result(const struct udt_hs_listener *l, const struct udt_hs_accept *acc,
                          struct udt_hs_result *out)
{
    (void)l;
    out->peer_id = acc->peer_id;
    out->isn_send = acc->isn;
    out->isn_recv = acc->isn;
    out->mss = acc->mss;
    out->peer_flow_window = acc->peer_flow_window;
    memcpy(out->self_ip, acc->self_ip, sizeof out->self_ip);
}

/* ------------------------------------------------------------ connected */

int udt_hs_connected_reply(const struct udt_hs_config *cfg, bool rendezvous,
                           const struct udt_hs_result *res, const struct udt_handshake *in,
                           uint8_t *out, size_t cap)
{
    bool due = in->conn_type == UDT_HS_REQUEST ||
               (rendezvous && in->conn_type != UDT_HS_RENDEZVOUS_REPLY && in->conn_type != UDT_HS_REJECT);
    if (!due)
        return 0;
    struct udt_handshake hs = {
        .version = UDT_VERSION,
        .sock_type = cfg->sock_type,
        .isn = res->isn_send,
        .mss = res->mss,
        .flow_window = cfg->flow_window,
        .conn_type = rendezvous ? UDT_HS_RENDEZVOUS_REPLY : UDT_HS_RESPONSE,
        .sock_id = cfg->sock_id,
    };
    return send_hs(out, cap, res->peer_id, &hs);
}
