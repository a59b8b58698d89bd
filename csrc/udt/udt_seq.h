/*
 * udt_seq.h - UDT4's 31-bit sequence numbers, 29-bit message numbers and 31-bit
 * ACK numbers: comparison, distance and increment with wrap-around.
 *
 * Why: every UDT structure (loss lists, ACK window, congestion control, the
 * receive and send buffers) orders packets by sequence number, and the numbers
 * wrap at 2^31 (messages at 2^29).  Two numbers are compared by the short way
 * round the circle, exactly as libudt's CSeqNo/CMsgNo do (threshold 2^30 - 1
 * for sequences, 2^28 - 1 for messages): so all numbers in use at one time
 * must lie within a quarter of the circle, which UDT's windows guarantee.
 *
 * All arithmetic is done in 64 bits, so no input can overflow (no UB); inputs
 * are expected in range (callers mask what they read from the wire: udt_wire.c
 * does), and out-of-range inputs are masked here too rather than trusted.
 */
#ifndef RTUDP_UDT_SEQ_H
#define RTUDP_UDT_SEQ_H

#include <stdint.h>

#define UDT_SEQ_MAX 0x7FFFFFFFu   /* largest sequence number; then 0 */
#define UDT_SEQ_TH 0x3FFFFFFF     /* |a - b| below this: no wrap between them */
#define UDT_MSG_MAX 0x1FFFFFFFu   /* largest message number */
#define UDT_MSG_TH 0x0FFFFFFF
#define UDT_ACKNO_MAX 0x7FFFFFFFu /* ACK numbers (the ACK/ACK2 pairing counter) */

/* ------------------------------------------------------------ sequences */

/* <0, 0, >0 as a is before, equal to, after b (the short way round). */
static inline int32_t udt_seq_cmp(uint32_t a, uint32_t b)
{
    int64_t d = (int64_t)(a & UDT_SEQ_MAX) - (int64_t)(b & UDT_SEQ_MAX);
    /* |d| <= 2^31 - 1: both results fit in int32 */
    return (int32_t)((d < UDT_SEQ_TH && d > -UDT_SEQ_TH) ? d : -d);
}

/* Signed distance from a to b (b - a the short way round): b == a + off. */
static inline int32_t udt_seq_off(uint32_t a, uint32_t b)
{
    int64_t x = a & UDT_SEQ_MAX, y = b & UDT_SEQ_MAX, d = y - x;
    if (d < UDT_SEQ_TH && d > -UDT_SEQ_TH)
        return (int32_t)d;
    return (int32_t)(x < y ? d - (int64_t)UDT_SEQ_MAX - 1 : d + (int64_t)UDT_SEQ_MAX + 1);
}

/* Number of sequence numbers from a to b inclusive, going forward from a
 * (a == b: 1).  As libudt's seqlen: b is taken to be at or after a. */
static inline uint32_t udt_seq_len(uint32_t a, uint32_t b)
{
    int64_t x = a & UDT_SEQ_MAX, y = b & UDT_SEQ_MAX;
    return (uint32_t)(x <= y ? y - x + 1 : y - x + (int64_t)UDT_SEQ_MAX + 2);
}

static inline uint32_t udt_seq_inc(uint32_t s) { return (s + 1u) & UDT_SEQ_MAX; }
static inline uint32_t udt_seq_dec(uint32_t s) { return (s - 1u) & UDT_SEQ_MAX; }

/* s + n for any n (negative goes back); 2^31 divides 2^32, so wrapping the
 * unsigned sum and masking is exact. */
static inline uint32_t udt_seq_add(uint32_t s, int32_t n)
{
    return (s + (uint32_t)n) & UDT_SEQ_MAX;
}

/* ------------------------------------------------------------ messages */

static inline int32_t udt_msg_cmp(uint32_t a, uint32_t b)
{
    int64_t d = (int64_t)(a & UDT_MSG_MAX) - (int64_t)(b & UDT_MSG_MAX);
    return (int32_t)((d < UDT_MSG_TH && d > -UDT_MSG_TH) ? d : -d);
}

static inline int32_t udt_msg_off(uint32_t a, uint32_t b)
{
    int64_t x = a & UDT_MSG_MAX, y = b & UDT_MSG_MAX, d = y - x;
    if (d < UDT_MSG_TH && d > -UDT_MSG_TH)
        return (int32_t)d;
    return (int32_t)(x < y ? d - (int64_t)UDT_MSG_MAX - 1 : d + (int64_t)UDT_MSG_MAX + 1);
}

static inline uint32_t udt_msg_inc(uint32_t m) { return (m + 1u) & UDT_MSG_MAX; }

/* ------------------------------------------------------------ ACK numbers */

static inline uint32_t udt_ackno_inc(uint32_t a) { return (a + 1u) & UDT_ACKNO_MAX; }

#endif
