/*
 * udt_rows.c - a udt channel's connections as rows for stats(), rtstat and Prometheus
 * (struct rtudp_udt_conn_row, its counters RTUDP_UDT_CONN_ROW_COUNTERS in udt_area.h).
 *
 * A row is a copy of one socket's figures, taken without locks from its shared lines
 * and from the worker's protocol state (struct udt_conn), which any client of the
 * pool can write.  So the copy trusts nothing: the area's layout is checked on a
 * private copy of its configuration before anything is indexed, every word is read
 * once with a relaxed atomic load (a torn or stale value is possible across fields,
 * never within one), doubles are taken only when finite and in range, and counts
 * that are differences are clamped to the buffer.  A reader gets odd numbers from
 * garbage, never a crash.  Compiled into the cffi extension (and the worker, which
 * does not use it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime under -std=c11 */
#endif
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "kinds.h"
#include "proto/udt_area.h"
#include "proto/udt_conn.h"
#include "shm_access.h"

/* the row counters' table, for the udt kind area in udt_area.c */
RTUDP_ROW_TABLE(rtudp_udt_row_counters, struct rtudp_udt_conn_row, RTUDP_UDT_CONN_ROW_COUNTERS);

/* a double of shared memory as an integer: x * scale when finite and in [0, max] */
static uint64_t scaled(double x, double scale, double max)
{
    double v = x * scale;
    return v >= 0.0 && v <= max ? (uint64_t)v : 0;
}

/* "host:port" / "[host]:port" of a shared address ("" for none or a bad family) */
static void addr_text(const struct rtudp_sockaddr *sa, char *out, size_t cap)
{
    struct rtudp_sockaddr a;
    load_bytes_relaxed(&a, sa, sizeof a);
    char host[INET6_ADDRSTRLEN] = "";
    out[0] = '\0';
    if (a.family == AF_INET && inet_ntop(AF_INET, a.addr, host, sizeof host))
        snprintf(out, cap, "%s:%u", host, (unsigned)a.port);
    else if (a.family == AF_INET6 && inet_ntop(AF_INET6, a.addr, host, sizeof host))
        snprintf(out, cap, "[%s]:%u", host, (unsigned)a.port);
}

/* how long the sender has not moved (ms; the worker's times are CLOCK_MONOTONIC µs),
 * 0 when nothing is unacknowledged; a time ahead of the clock (garbage) counts 0 */
static uint64_t stalled_ms(const struct udt_conn *k, uint64_t unacked)
{
    struct timespec ts;
    if (!unacked || clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t since = load_relaxed(&k->snd_progress_us);
    return since && since <= now_us ? (now_us - since) / 1000u : 0;
}

int rtudp_udt_conn_row(const void *area, uint64_t area_bytes, uint32_t i, void *row)
{
    const struct rtudp_udt_area *a = area;
    struct rtudp_udt_conn_row *r = row;
    /* the layout from a private copy: a client may rewrite the config meanwhile */
    struct rtudp_udt_config c, want;
    if (!a || !r || area_bytes < sizeof *a)
        return RTUDP_EINVAL;
    load_bytes_relaxed(&c, &a->config, sizeof c);
    if (rtudp_udt_layout(&want, c.max_socks, c.buf_pkts, c.mss) != RTUDP_OK ||
        want.socks_off != c.socks_off || want.sock_stride != c.sock_stride ||
        want.conn_off != c.conn_off || rtudp_udt_area_bytes(&want) > area_bytes)
        return RTUDP_EINVAL;
    if (i >= c.max_socks)
        return RTUDP_EINVAL;
    const uint8_t *base = (const uint8_t *)a + c.socks_off + (uint64_t)i * c.sock_stride;
    const struct rtudp_udt_sock *s = (const struct rtudp_udt_sock *)base;
    const struct udt_conn *k = (const struct udt_conn *)(base + c.conn_off);
    uint32_t state = load_relaxed(&s->wrk.state);
    if (state < RTUDP_UDT_LISTENING || state > RTUDP_UDT_CLOSING)
        return 0; /* free, claimed and idle, or closed: not a connection */
    memset(r, 0, sizeof *r);
    r->state = state;
    r->sock_id = load_relaxed(&s->wrk.sock_id);
    uint32_t t = load_relaxed(&s->cli.sock_type);
    r->sock_type = t == RTUDP_UDT_STREAM || t == RTUDP_UDT_DGRAM ? t : 0;
    if (state == RTUDP_UDT_LISTENING)
        return 1;
    r->peer_id = load_relaxed(&s->wrk.peer_id);
    addr_text(&s->wrk.peer, r->peer, sizeof r->peer);
    if (state == RTUDP_UDT_CONNECTING)
        return 1; /* the rest is of an earlier connection, if any */
    r->rtt_ns = (uint64_t)load_relaxed(&k->srtt) * 1000u;
    r->rtt_var_ns = (uint64_t)load_relaxed(&k->srtt_var) * 1000u;
    double period = load_relaxed(&k->cc.pkt_period_us);
    r->send_period_ns = scaled(period, 1e3, 1e15);
    r->send_rate = r->send_period_ns ? 1000000000u / r->send_period_ns : 0;
    r->cwnd = scaled(load_relaxed(&k->cc.cwnd), 1.0, 1e9);
    r->flow_window = load_relaxed(&k->peer_fw);
    r->rcv_room = load_relaxed(&s->wrk.flow_window);
    uint64_t unacked = load_relaxed(&s->cli.snd_head) - load_relaxed(&s->wrk.snd_acked);
    r->unacked = unacked <= c.buf_pkts ? unacked : 0;
    r->stalled_ms = stalled_ms(k, r->unacked);
    r->stalled = r->stalled_ms >= RTUDP_UDT_STALL_MS;
    uint32_t wait = load_relaxed(&k->snd_wait);
    r->snd_wait = r->unacked && wait <= RTUDP_UDT_WAIT_ACK ? wait : RTUDP_UDT_WAIT_NONE;
    r->pkt_sent = load_relaxed(&s->wrk.pkt_sent);
    r->pkt_recv = load_relaxed(&s->wrk.pkt_recv);
    r->pkt_retrans = load_relaxed(&s->wrk.pkt_retrans);
    r->pkt_snd_loss = load_relaxed(&s->wrk.pkt_snd_loss);
    r->pkt_rcv_loss = load_relaxed(&s->wrk.pkt_rcv_loss);
    r->bytes_sent = load_relaxed(&s->wrk.bytes_sent);
    r->bytes_recv = load_relaxed(&s->wrk.bytes_recv);
    r->snd_drop = load_relaxed(&s->wrk.snd_drop);
    r->rcv_drop = load_relaxed(&s->wrk.rcv_drop);
    return 1;
}
