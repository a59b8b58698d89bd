/*
 * warmup.h - warm the kernel's send path before a deadline that follows a long park.
 *
 * After the vCPU has been idle for a while, the first send pays for caches and TLBs
 * that the host's other work evicted meanwhile, and the longer the park, the more it
 * pays.  The spin does not warm it: it runs no kernel code.  One datagram pushed
 * through the stack a little before the deadline does, nearly to a warm send's time;
 * a MSG_PROBE send, which stops before the packet is built, does not
 * (docs/measurements.md at d3e5a6a, "The cold send path").
 *
 * So the TX thread keeps a UDP socket on loopback connected to itself.  When it parks
 * for longer than RTUDP_WARMUP_AFTER_NS with a deadline to spin for, it parks `lead`
 * earlier still, spins to `lead` before the deadline, sends one datagram to itself
 * there, and spins the rest; after the deadline's send it reads the datagrams back
 * once RTUDP_WARMUP_DRAIN_BATCH wait (the socket's queue never fills, no drop is
 * counted anywhere).  A warm-up takes longer the longer the park was, so the lead
 * follows the longest of the last RTUDP_WARMUP_RECENT ones.  It warms what every UDP
 * send shares (system call, socket layer, routing, skb allocation, the loopback
 * device and softirq): a NIC's driver stays cold.
 */
#ifndef RTUDP_WARMUP_H
#define RTUDP_WARMUP_H

#include <stdint.h>

/* a park at least this long ends with a warm-up: below it the send path stays warm
 * enough that a warm-up would cost more than it saves (docs/measurements.md) */
#define RTUDP_WARMUP_AFTER_NS 300000LL
#define RTUDP_WARMUP_RECENT 8          /* warm-ups the lead is taken from */
#define RTUDP_WARMUP_SLACK_NS 5000LL   /* added to the longest of them */
#define RTUDP_WARMUP_LEAD_MIN_NS 10000LL
#define RTUDP_WARMUP_LEAD_MAX_NS 100000LL
#define RTUDP_WARMUP_LEAD_START_NS 40000LL /* before any warm-up was timed */
/* the datagrams are read back once this many wait, with one system call (a socket's
 * queue holds hundreds of them) */
#define RTUDP_WARMUP_DRAIN_BATCH 16

struct rtudp_warmup {
    int fd;                            /* loopback UDP socket connected to itself; -1: none */
    uint32_t unread;                   /* datagrams sent to it and not read back yet */
    int64_t lead_ns;                   /* park this much before the spin margin */
    int64_t recent[RTUDP_WARMUP_RECENT]; /* the last warm-ups' durations (0: none yet) */
    uint32_t next;
    uint64_t count;                    /* warm-ups done (workers[].warmups) */
};

/* the lead bookkeeping alone, no socket (fd -1): a warm-up is never wanted */
void rtudp_warmup_init(struct rtudp_warmup *wu);
/* init, then open the socket: 0, or -1 with errno (no loopback in this network
 * namespace, ...): the worker goes on without warm-ups */
int rtudp_warmup_open(struct rtudp_warmup *wu);
void rtudp_warmup_close(struct rtudp_warmup *wu);
/* whether a park of park_ns before a spun deadline should end with a warm-up */
int rtudp_warmup_wanted(const struct rtudp_warmup *wu, int64_t park_ns);
/* a warm-up took took_ns: the lead follows (pure bookkeeping) */
void rtudp_warmup_took(struct rtudp_warmup *wu, int64_t took_ns);
/* push one datagram through the send path now, timed (rtudp_warmup_took) */
void rtudp_warmup_run(struct rtudp_warmup *wu);
/* read back all the warm-ups sent (after a deadline's send: off the timed path) */
void rtudp_warmup_drain(struct rtudp_warmup *wu);

#endif /* RTUDP_WARMUP_H */
