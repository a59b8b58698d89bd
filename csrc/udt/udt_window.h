/*
 * udt_window.h - the receiver's measurement windows, as UDT computes them.
 *
 * ACK window (libudt CACKWindow): each full or short ACK the receiver sends is
 *   remembered as (ACK number, acknowledged sequence number, send time); the
 *   sender answers with an ACK2 carrying the ACK number, and the time since
 *   the ACK left is one RTT sample.  A ring of UDT_ACKWIN_SIZE (1024, as
 *   libudt) entries; the oldest are overwritten, and an ACK2 retires its
 *   entry and all older ones (their ACK2s were lost or overtaken).
 *
 * Packet time window (libudt CPktTimeWindow): the intervals between the last
 *   UDT_ARRWIN_SIZE (16) data packet arrivals give the receive speed, the
 *   intervals inside the last UDT_PROBEWIN_SIZE (64) probe pairs give the link
 *   capacity (the sender sends the packets whose sequence number ends in 0x0
 *   and 0x1 back to back: their spacing at the receiver is the bottleneck's
 *   service time).  Both are reported in full ACKs (packets/s), and a libudt
 *   sender steers its rate by them, so they are computed exactly as UDT4's
 *   receiver does for the same arrival times:
 *    - the median is the (n/2)-th smallest of the window's first n - 1 slots
 *      (libudt's nth_element leaves the last slot out);
 *    - values more than 8x above or below it are dropped;
 *    - the speed is 1e6 / (integer mean of the survivors), rounded up, and is
 *      reported only when more than half of the window survives;
 *    - the capacity counts the median once more and divides in floating point;
 *    - every packet ending in 0x1 records its time since the latest packet
 *      ending in 0x0, whatever came between (a lost or late probe packet gives
 *      a bogus interval that the median filter drops).
 *   Where libudt's value is undefined, ours is defined: a 0x1 packet before
 *   any 0x0 one records nothing (libudt times it from 0), and a capacity whose
 *   mean is 0 (sub-microsecond pairs) is reported as 0, which a libudt sender
 *   ignores as it ignores the negative value libudt's division gives.
 *
 * Times are microseconds on the caller's clock.  No pointers, no allocation:
 * the structures can live in shared memory.
 */
#ifndef RTUDP_UDT_WINDOW_H
#define RTUDP_UDT_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#define UDT_ACKWIN_SIZE 1024u
#define UDT_ARRWIN_SIZE 16u
#define UDT_PROBEWIN_SIZE 64u

struct udt_ackwin_entry {
    uint32_t ackno;
    uint32_t seq;
    uint64_t sent_us;
};

struct udt_ackwin {
    uint32_t head;   /* next slot to write */
    uint32_t n;      /* live entries, the newest n before head */
    struct udt_ackwin_entry e[UDT_ACKWIN_SIZE];
};

void udt_ackwin_init(struct udt_ackwin *w);
void udt_ackwin_store(struct udt_ackwin *w, uint32_t ackno, uint32_t seq, uint64_t now_us);
/* An ACK2 for ackno arrived: the RTT in µs (>= 0) and *seq the sequence
 * number that ACK carried, or -1 when the ACK is unknown (overwritten, or
 * already acknowledged). */
int64_t udt_ackwin_ack2(struct udt_ackwin *w, uint32_t ackno, uint64_t now_us, uint32_t *seq);

struct udt_pktwin {
    uint32_t arr[UDT_ARRWIN_SIZE];     /* arrival intervals, µs */
    uint32_t probe[UDT_PROBEWIN_SIZE]; /* probe pair intervals, µs */
    uint32_t arr_pos, probe_pos;
    uint64_t last_arr_us;
    uint32_t arrivals;                 /* since init, up to UDT_ARRWIN_SIZE */
    uint64_t probe1_us;                /* the latest 0x0 packet arrived then */
    bool have_probe1;                  /* one has */
};

void udt_pktwin_init(struct udt_pktwin *w, uint64_t now_us);
/* A data packet with this sequence number arrived (also feeds the probes). */
void udt_pktwin_arrival(struct udt_pktwin *w, uint32_t seq, uint64_t now_us);
/* Packets per second from the arrival intervals; 0 when too few are valid. */
uint32_t udt_pktwin_rcv_speed(const struct udt_pktwin *w);
/* The receive speed comes from measured intervals: more than half of the window
 * holds them (before that the start values can make a speed, UDT4's 1 packet/s). */
bool udt_pktwin_measured(const struct udt_pktwin *w);
/* Link capacity from the probe pairs, packets per second (0: no estimate). */
uint32_t udt_pktwin_bandwidth(const struct udt_pktwin *w);
/* The median-filtered mean interval (µs, 0 when fewer than `need` survive)
 * of n values, in integers (the speed's rule): exposed for tests. */
uint32_t udt_median_filtered_mean(const uint32_t *v, uint32_t n, uint32_t need, bool count_median);

#endif
