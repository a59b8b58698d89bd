/*
 * segment.h - whole segments: map them, and create or validate each kind.
 *
 *   /rtudp.<name>            RTUDP_SEG_RING     one ring (tests, tools)
 *   /rtudp.<pool>            RTUDP_SEG_CONTROL  struct rtudp_control, command ring, reply ring
 *   /rtudp.<pool>.<channel>  RTUDP_SEG_CHANNEL  header, channel block, kind area, TX ring, RX ring
 *
 * Creators fill what they own (e.g. the channel block's configuration) in the
 * zero-filled memory first, then call *_init, which publishes the magic last: an
 * attacher that sees the magic sees a complete segment.  The memory is zero already
 * (a new shm object), so *_init leaves the rings' data unwritten: opening many
 * channels would otherwise write every page of their rings.  Validators check every
 * offset and size against the mapped size before anything else is read.
 */
#ifndef RTUDP_SEGMENT_H
#define RTUDP_SEGMENT_H

#include <stddef.h>

#include "ring.h"

/* BEGIN CDEF */
void *rtudp_map(int fd, uint64_t size, int writable);
int rtudp_unmap(void *base, uint64_t size);
/* magic, version, total size == size, header size, kind */
int rtudp_segment_check_header(const void *base, uint64_t size, uint32_t kind,
                               struct rtudp_check *why);

uint64_t rtudp_ring_segment_size(uint32_t ring_kind, uint64_t capacity);
int rtudp_ring_segment_init(void *base, uint64_t size, uint32_t ring_kind, uint64_t capacity,
                            struct rtudp_check *why);
/* validate a ring segment of `size` mapped bytes (header and ring geometry); on
 * success *ring points at the ring and *ring_avail is the bytes from there to the end */
int rtudp_ring_segment_validate(void *base, uint64_t size, uint32_t *ring_kind, void **ring,
                                uint64_t *ring_avail, struct rtudp_check *why);

uint64_t rtudp_control_segment_size(void);
/* header and rings of a new control segment; pool settings the supervisor left 0
 * (max_channels, horizon_ns) get their defaults */
int rtudp_control_init(void *base, uint64_t size, struct rtudp_check *why);
int rtudp_control_validate(void *base, uint64_t size, struct rtudp_check *why);
/* a validated control segment's command (MPSC) and reply (broadcast) rings */
int rtudp_control_rings(void *base, uint64_t size, void **cmd, uint64_t *cmd_avail,
                        void **reply, uint64_t *reply_avail, struct rtudp_check *why);

/* 0 if a capacity is not a power of two in range or the kind area is over
 * RTUDP_KIND_AREA_MAX; area_bytes (the channel kind's own area, between the block
 * and the TX ring) is rounded up to whole cache lines */
uint64_t rtudp_channel_segment_size(uint64_t tx_capacity, uint64_t rx_capacity,
                                    uint64_t area_bytes);
/* where a channel segment's tap rings begin (its header's ring_offset[2] and [3]; the RX
 * tap ring runs to the end): the memory only a tap fills, allocated when the first tap
 * attaches (shmring/tap.py).  RTUDP_EINVAL where rtudp_channel_segment_size is 0 */
int rtudp_channel_tap_offsets(uint64_t tx_capacity, uint64_t rx_capacity, uint64_t area_bytes,
                              uint64_t *tx_tap, uint64_t *rx_tap);
int rtudp_channel_segment_init(void *base, uint64_t size, uint64_t tx_capacity,
                               uint64_t rx_capacity, uint64_t area_bytes, struct rtudp_check *why);
/* on success: the block, and each ring's memory and bytes available from there */
int rtudp_channel_segment_validate(void *base, uint64_t size, struct rtudp_channel_block **block,
                                   void **tx, uint64_t *tx_avail, void **rx, uint64_t *rx_avail,
                                   struct rtudp_check *why);
/* a validated channel segment's tap rings (broadcast): what its worker sent, what it
 * received; each's memory and bytes available up to the next thing */
int rtudp_channel_tap_rings(void *base, uint64_t size, void **tx_tap, uint64_t *tx_avail,
                            void **rx_tap, uint64_t *rx_avail, struct rtudp_check *why);
/* a tap ring's capacity for a channel ring of ring_capacity bytes */
uint64_t rtudp_tap_capacity(uint64_t ring_capacity);
/* a validated channel segment's kind area: from the end of the block to the TX ring
 * (64-aligned; *area_bytes 0 for a kind without one) */
int rtudp_channel_area(void *base, uint64_t size, void **area, uint64_t *area_bytes,
                       struct rtudp_check *why);
/* supervisor, moving a channel: producers' commits go to `worker` from now on (their
 * routes read this field after each commit's fence; ring.h, struct rtudp_mpsc_route) */
void rtudp_channel_set_worker(struct rtudp_channel_block *b, int32_t worker);
/* supervisor, before a TAKE_OVER: worker `to` is to take the channel over once the
 * worker serving it lets go */
void rtudp_channel_expect_handoff(struct rtudp_channel_block *b, int32_t to);
/* the worker letting go (or the supervisor, when that worker is gone): producers go to
 * the awaited worker from now on, and it may serve the channel.  The index it goes to,
 * or -1 when no handoff is awaited or its worker is not below n_workers (nothing done) */
int32_t rtudp_channel_hand_over(struct rtudp_channel_block *b, uint32_t n_workers);
/* the worker taking over: whether the channel is released to it */
int rtudp_channel_released(const struct rtudp_channel_block *b);
/* END CDEF */

/* read-write, with every page table entry filled now (MAP_POPULATE): for a segment
 * whose pages are allocated already (posix_fallocate at create), so that nothing
 * faults when it is first touched (the worker, mapping a channel) */
void *rtudp_map_populate(int fd, uint64_t size);

/* The start of a kind area's check (its rtudp_kind_area.check): the area is at least
 * `need` bytes and its configuration's 64-bit magic, at magic_off and written last by
 * the supervisor, is `magic`.  RTUDP_OK, or RTUDP_ECORRUPT naming the kind and the bad
 * value. */
int rtudp_kind_area_head(const char *kind, const void *area, uint64_t area_bytes,
                         uint64_t need, size_t magic_off, uint64_t magic,
                         struct rtudp_check *why);
/* the same for an area struct *a whose first-checked field is config.magic */
#define RTUDP_KIND_AREA_HEAD(kind, a, area_bytes, want_magic, why)                          \
    rtudp_kind_area_head(kind, a, area_bytes, sizeof *(a),                                  \
                         offsetof(__typeof__(*(a)), config.magic), want_magic, why)

/* a segment (pool or channel) name: [A-Za-z0-9_.-]{1,RTUDP_NAME_MAX}; s may be a
 * fixed-size field, nothing past RTUDP_NAME_MAX + 1 bytes is read */
bool rtudp_name_valid(const char *s);

#endif /* RTUDP_SEGMENT_H */
