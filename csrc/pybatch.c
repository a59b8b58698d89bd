/* pybatch.c - see pybatch.h: records out as one pickle stream of list[bytes]. */
#include "pybatch.h"

#include <string.h>

#define HEAD_LEN 4 /* PROTO 3, EMPTY_LIST, MARK */
#define ITEM_LEN 5 /* BINBYTES + 4-byte length (always the long form: one size) */
#define TAIL_LEN 2 /* APPENDS, STOP */

struct pickler {
    uint8_t *buf;
    uint64_t at;
    uint64_t size;
};

static void begin(struct pickler *p)
{
    static const uint8_t head[HEAD_LEN] = {0x80, 3, ']', '('};
    memcpy(p->buf, head, HEAD_LEN);
    p->at = HEAD_LEN;
}

/* room for one more item of len bytes, keeping space for the tail */
static int fits(const struct pickler *p, uint64_t len)
{
    return ITEM_LEN + len + TAIL_LEN <= p->size - p->at;
}

static void item_head(struct pickler *p, uint32_t len)
{
    uint8_t *q = p->buf + p->at;
    q[0] = 'B';
    q[1] = (uint8_t)len;
    q[2] = (uint8_t)(len >> 8);
    q[3] = (uint8_t)(len >> 16);
    q[4] = (uint8_t)(len >> 24);
    p->at += ITEM_LEN;
}

static uint64_t finish(struct pickler *p)
{
    p->buf[p->at++] = 'e';
    p->buf[p->at++] = '.';
    return p->at;
}

static int pickle_record(void *ctx, const struct rtudp_tx_record *rec, const uint8_t *payload,
                         uint32_t len)
{
    struct pickler *p = ctx;
    (void)rec;
    if (!fits(p, len))
        return 0;
    item_head(p, len);
    memcpy(p->buf + p->at, payload, len);
    p->at += len;
    return 1;
}

int64_t rtudp_mpsc_get_pickled(struct rtudp_mpsc *m, uint8_t *buf, uint64_t buflen,
                               uint64_t max_n, uint64_t *used)
{
    if (buflen < HEAD_LEN + ITEM_LEN + m->max_payload + TAIL_LEN)
        return RTUDP_EBUFSMALL;
    struct pickler p = {buf, 0, buflen};
    begin(&p);
    int64_t n = rtudp_mpsc_drain(m, max_n, pickle_record, &p);
    if (n > 0)
        *used = finish(&p);
    return n;
}

int64_t rtudp_bcast_read_pickled(struct rtudp_bcast *b, struct rtudp_bcast_reader *rd,
                                 uint8_t *buf, uint64_t buflen, uint64_t max_n, uint64_t *used)
{
    if (buflen < HEAD_LEN + ITEM_LEN + b->max_payload + TAIL_LEN)
        return RTUDP_EBUFSMALL;
    struct pickler p = {buf, 0, buflen};
    begin(&p);
    int64_t n = 0;
    int rc = RTUDP_EMPTY;
    while ((uint64_t)n < max_n) {
        uint64_t left = p.size - p.at;
        if (left <= ITEM_LEN + TAIL_LEN)
            break;
        uint64_t room = left - ITEM_LEN - TAIL_LEN;
        uint32_t len;
        /* read straight into place behind the item header */
        rc = rtudp_bcast_read(b, rd, p.buf + p.at + ITEM_LEN,
                              room > UINT32_MAX ? UINT32_MAX : (uint32_t)room, &len, NULL, NULL,
                              NULL, NULL);
        if (rc != RTUDP_OK)
            break; /* EBUFSMALL leaves the reader's cursor on the record */
        item_head(&p, len);
        p.at += len;
        n++;
    }
    if (n > 0) {
        *used = finish(&p);
        return n;
    }
    return rc;
}
