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
 *   service time).  Both are reported in full ACKs (packets/s).  UDT filters
 *   with the median: values more than 8x above or below it are dropped, and
 *   the speed is reported only when more than half of the window survives.
 *
 * Differences from libudt, on purpose: the median is the true median of the
 * whole window (libudt takes it from all but the last element, a slip), and a
 * probe interval is recorded only when the 0x1 packet directly follows the 0x0
 * one (libudt times any 0x1 packet against the last 0x0 seen, so a lost probe
 * packet gives a huge bogus interval; the median filter mostly hides it).
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
    uint64_t probe1_us;
    uint32_t probe1_seq;
    bool have_probe1;
};

void udt_pktwin_init(struct udt_pktwin *w, uint64_t now_us);
/* A data packet with this sequence number arrived (also feeds the probes). */
void udt_pktwin_arrival(struct udt_pktwin *w, uint32_t seq, uint64_t now_us);
/* Packets per second from the arrival intervals; 0 when too few are valid. */
uint32_t udt_pktwin_rcv_speed(const struct udt_pktwin *w);
/* Link capacity from the probe pairs, packets per second (always > 0). */
uint32_t udt_pktwin_bandwidth(const struct udt_pktwin *w);
/* The median-filtered mean interval (µs, 0 when fewer than `need` survive)
 * of n values: the helper both estimates share, exposed for tests. */
uint32_t udt_median_filtered_mean(const uint32_t *v, uint32_t n, uint32_t need, bool count_median);

#endif
