/*
 * segment.c - whole segments (see segment.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getpid() */
#endif
#include "segment.h"
#include "shm_access.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_HDR ((uint64_t)sizeof(struct rtudp_segment_header))

int rtudp_segment_check_header(const void *base, uint64_t size, uint32_t kind,
                               struct rtudp_check *why)
{
    if (!base)
        return rtudp_check_set(why, RTUDP_EINVAL, "segment is not mapped");
    if (size < SEG_HDR)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "segment is %llu bytes, smaller than its %llu-byte header",
                               (unsigned long long)size, (unsigned long long)SEG_HDR);
    const struct rtudp_segment_header *h = base;
    uint64_t magic = load_acquire(&h->magic);
    if (magic != RTUDP_SEG_MAGIC)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "bad magic 0x%016llx (expected 0x%016llx): not an rtudp segment, "
                               "or not initialised yet",
                               (unsigned long long)magic, (unsigned long long)RTUDP_SEG_MAGIC);
    if (h->layout_version != RTUDP_LAYOUT_VERSION)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "layout version %u, this build reads version %d",
                               h->layout_version, RTUDP_LAYOUT_VERSION);
    if (h->total_size != size)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "header says %llu bytes but the segment has %llu (truncated or resized)",
                               (unsigned long long)h->total_size, (unsigned long long)size);
    if (h->header_size != SEG_HDR)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "header size %llu, expected %llu",
                               (unsigned long long)h->header_size, (unsigned long long)SEG_HDR);
    if (h->kind != kind)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "segment kind %u, expected %u", h->kind, kind);
    return RTUDP_OK;
}

/* the fields every creator fills the same way; the magic is published last */
static void header_fill(void *base, uint64_t size, uint32_t kind, uint32_t ring_count)
{
    struct rtudp_segment_header *h = base;
    memset(base, 0, SEG_HDR);
    h->layout_version = RTUDP_LAYOUT_VERSION;
    h->kind = kind;
    h->total_size = size;
    h->header_size = SEG_HDR;
    h->creator_pid = (uint32_t)getpid();
    h->ring_count = ring_count;
    h->created_ns = rtudp_now_ns();
}

static void header_publish(void *base)
{
    store_release(&((struct rtudp_segment_header *)base)->magic, (uint64_t)RTUDP_SEG_MAGIC);
}


void *rtudp_map(int fd, uint64_t size, int writable)
{
    void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int rtudp_unmap(void *base, uint64_t size)
{
    return munmap(base, size) == 0 ? RTUDP_OK : RTUDP_ESYS;
}

uint64_t rtudp_ring_segment_size(uint32_t ring_kind, uint64_t capacity)
{
    if (!rtudp_ring_capacity_ok(capacity))
        return 0;
    if (ring_kind == RTUDP_RING_MPSC)
        return SEG_HDR + rtudp_mpsc_footprint(capacity);
    if (ring_kind == RTUDP_RING_BROADCAST)
        return SEG_HDR + rtudp_bcast_footprint(capacity);
    return 0;
}

int rtudp_ring_segment_init(void *base, uint64_t size, uint32_t ring_kind, uint64_t capacity,
                            struct rtudp_check *why)
{
    if (!rtudp_ring_capacity_ok(capacity))
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "capacity %llu is not a power of two between %llu and %llu bytes",
                    (unsigned long long)capacity, (unsigned long long)RTUDP_RING_MIN_CAPACITY,
                    (unsigned long long)RTUDP_RING_MAX_CAPACITY);
    uint64_t want = rtudp_ring_segment_size(ring_kind, capacity);
    if (want == 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "unknown ring kind %u", ring_kind);
    if (size != want)
        return rtudp_check_set(why, RTUDP_EINVAL, "segment is %llu bytes, a ring of capacity %llu needs %llu",
                    (unsigned long long)size, (unsigned long long)capacity,
                    (unsigned long long)want);
    header_fill(base, size, RTUDP_SEG_RING, 1);
    ((struct rtudp_segment_header *)base)->ring_offset[0] = SEG_HDR;
    void *ring = (uint8_t *)base + SEG_HDR;
    int rc = ring_kind == RTUDP_RING_MPSC ? rtudp_mpsc_init(ring, capacity)
                                          : rtudp_bcast_init(ring, capacity);
    if (rc != RTUDP_OK)
        return rtudp_check_set(why, rc, "ring init failed");
    header_publish(base);
    return RTUDP_OK;
}

int rtudp_ring_segment_validate(void *base, uint64_t size, uint32_t *ring_kind, void **ring,
                                uint64_t *ring_avail, struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_RING, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_segment_header *h = base;
    if (h->ring_count != 1)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring segment lists %u rings, expected 1", h->ring_count);
    uint64_t off = h->ring_offset[0];
    if (off < SEG_HDR || off % RTUDP_CACHE_LINE != 0 || off > size - 8)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring offset %llu is outside the %llu-byte segment or misaligned",
                    (unsigned long long)off, (unsigned long long)size);
    void *mem = (uint8_t *)base + off;
    uint32_t kind = ((const struct rtudp_mpsc_ring *)mem)->kind;
    if (kind == RTUDP_RING_MPSC) {
        struct rtudp_mpsc m;
        rc = rtudp_mpsc_attach(&m, mem, size - off, why);
    } else if (kind == RTUDP_RING_BROADCAST) {
        struct rtudp_bcast b;
        rc = rtudp_bcast_attach(&b, mem, size - off, why);
    } else {
        return rtudp_check_set(why, RTUDP_ECORRUPT, "ring kind %u is neither MPSC (%d) nor broadcast (%d)",
                    kind, RTUDP_RING_MPSC, RTUDP_RING_BROADCAST);
    }
    if (rc != RTUDP_OK)
        return rc;
    if (ring_kind)
        *ring_kind = kind;
    if (ring)
        *ring = mem;
    if (ring_avail)
        *ring_avail = size - off;
    return RTUDP_OK;
}


bool rtudp_name_valid(const char *s)
{
    size_t n = strnlen(s, RTUDP_NAME_MAX + 1);
    if (n < 1 || n > RTUDP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ control */

uint64_t rtudp_control_segment_size(void)
{
    return sizeof(struct rtudp_control);
}

int rtudp_control_init(void *base, uint64_t size, struct rtudp_check *why)
{
    if (size != sizeof(struct rtudp_control))
        return rtudp_check_set(why, RTUDP_EINVAL, "control segment is %llu bytes, expected %zu",
                               (unsigned long long)size, sizeof(struct rtudp_control));
    header_fill(base, size, RTUDP_SEG_CONTROL, 0);
    struct rtudp_control *c = base;
    if (c->pool.max_channels == 0)
        c->pool.max_channels = RTUDP_MAX_CHANNELS;
    header_publish(base);
    return RTUDP_OK;
}

int rtudp_control_validate(void *base, uint64_t size, struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_CONTROL, why);
    if (rc != RTUDP_OK)
        return rc;
    if (size != sizeof(struct rtudp_control))
        return rtudp_check_set(why, RTUDP_ECORRUPT, "control segment is %llu bytes, expected %zu",
                               (unsigned long long)size, sizeof(struct rtudp_control));
    const struct rtudp_control *c = base;
    if (c->pool.n_workers > RTUDP_MAX_WORKERS)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "pool lists %u workers, at most %d",
                               c->pool.n_workers, RTUDP_MAX_WORKERS);
    if (c->pool.max_channels == 0 || c->pool.max_channels > RTUDP_MAX_CHANNELS)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "pool allows %u channels, must be 1..%d",
                               c->pool.max_channels, RTUDP_MAX_CHANNELS);
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ channels */

static inline uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

#define CHANNEL_BLOCK_OFF SEG_HDR
#define CHANNEL_TX_OFF align64(CHANNEL_BLOCK_OFF + sizeof(struct rtudp_channel_block))

uint64_t rtudp_channel_segment_size(uint64_t tx_capacity, uint64_t rx_capacity)
{
    if (!rtudp_ring_capacity_ok(tx_capacity) || !rtudp_ring_capacity_ok(rx_capacity))
        return 0;
    return CHANNEL_TX_OFF + align64(rtudp_mpsc_footprint(tx_capacity)) +
           align64(rtudp_bcast_footprint(rx_capacity));
}

int rtudp_channel_segment_init(void *base, uint64_t size, uint64_t tx_capacity,
                               uint64_t rx_capacity, struct rtudp_check *why)
{
    uint64_t want = rtudp_channel_segment_size(tx_capacity, rx_capacity);
    if (want == 0)
        return rtudp_check_set(why, RTUDP_EINVAL,
                               "ring capacities %llu / %llu must be powers of two between %llu "
                               "and %llu bytes",
                               (unsigned long long)tx_capacity, (unsigned long long)rx_capacity,
                               (unsigned long long)RTUDP_RING_MIN_CAPACITY,
                               (unsigned long long)RTUDP_RING_MAX_CAPACITY);
    if (size != want)
        return rtudp_check_set(why, RTUDP_EINVAL, "channel segment is %llu bytes, needs %llu",
                               (unsigned long long)size, (unsigned long long)want);
    uint64_t rx_off = CHANNEL_TX_OFF + align64(rtudp_mpsc_footprint(tx_capacity));
    header_fill(base, size, RTUDP_SEG_CHANNEL, 2);
    struct rtudp_segment_header *h = base;
    h->ring_offset[0] = CHANNEL_TX_OFF;
    h->ring_offset[1] = rx_off;
    int rc = rtudp_mpsc_init((void *)((uint8_t *)base + CHANNEL_TX_OFF), tx_capacity);
    if (rc == RTUDP_OK)
        rc = rtudp_bcast_init((void *)((uint8_t *)base + rx_off), rx_capacity);
    if (rc != RTUDP_OK)
        return rtudp_check_set(why, rc, "ring init failed");
    header_publish(base);
    return RTUDP_OK;
}

/* a ring's offset from the header: aligned, past the block, inside the segment */
static int ring_at(void *base, uint64_t size, uint64_t off, const char *which, void **mem,
                   uint64_t *avail, struct rtudp_check *why)
{
    if (off < CHANNEL_TX_OFF || off % RTUDP_CACHE_LINE || off >= size)
        return rtudp_check_set(why, RTUDP_ECORRUPT,
                               "%s ring offset %llu is misaligned or outside the %llu-byte segment",
                               which, (unsigned long long)off, (unsigned long long)size);
    *mem = (uint8_t *)base + off;
    *avail = size - off;
    return RTUDP_OK;
}

int rtudp_channel_segment_validate(void *base, uint64_t size, struct rtudp_channel_block **block,
                                   void **tx, uint64_t *tx_avail, void **rx, uint64_t *rx_avail,
                                   struct rtudp_check *why)
{
    int rc = rtudp_segment_check_header(base, size, RTUDP_SEG_CHANNEL, why);
    if (rc != RTUDP_OK)
        return rc;
    const struct rtudp_segment_header *h = base;
    if (size < CHANNEL_TX_OFF)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "channel segment of %llu bytes has no room "
                               "for its block", (unsigned long long)size);
    if (h->ring_count != 2)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "channel segment lists %u rings, expected 2",
                               h->ring_count);
    uint64_t tx_off = h->ring_offset[0], rx_off = h->ring_offset[1];
    if ((rc = ring_at(base, size, tx_off, "TX", tx, tx_avail, why)) != RTUDP_OK ||
        (rc = ring_at(base, size, rx_off, "RX", rx, rx_avail, why)) != RTUDP_OK)
        return rc;
    if (tx_off >= rx_off)
        return rtudp_check_set(why, RTUDP_ECORRUPT, "TX ring at %llu is not before RX ring at %llu",
                               (unsigned long long)tx_off, (unsigned long long)rx_off);
    /* each ring must end before the next thing starts */
    struct rtudp_mpsc m;
    struct rtudp_bcast b;
    if ((rc = rtudp_mpsc_attach(&m, *tx, rx_off - tx_off, why)) != RTUDP_OK ||
        (rc = rtudp_bcast_attach(&b, *rx, *rx_avail, why)) != RTUDP_OK)
        return rc;
    *tx_avail = rx_off - tx_off;
    *block = (struct rtudp_channel_block *)((uint8_t *)base + CHANNEL_BLOCK_OFF);
    return RTUDP_OK;
}
