/*
 * kinds.h - the channel kinds and their counters as every reader sees them.
 *
 * A counter is described once, where its struct is defined: an X-macro list next to
 * the struct (in rtudp_shm.h RTUDP_CHANNEL_COUNTERS for the channel block's,
 * RTUDP_MPSC_RING_COUNTERS / RTUDP_BCAST_RING_COUNTERS for the rings', RTUDP_WORKER_COUNTERS
 * for a worker slot's; one per kind area, e.g. RTUDP_RTP_AREA_COUNTERS in
 * proto/rtp_area.h), one entry a counter:
 *
 *   X(member, "name", TYPE, "unit", FLAGS, "help", "plus", "values")
 *   SUM("name", "unit", FLAGS, "help", "plus")          a sum of other counters, no storage
 *
 *   member  the field (a path: tx.sent), read where the struct is
 *   name    snake_case, unique in the list; stats() keys, rtstat, Prometheus derive from it
 *   TYPE    COUNTER (only grows), GAUGE (a level, a last value, an id), HISTOGRAM (a
 *           struct rtudp_hist), STATE (one of `values`), TEXT (a NUL-terminated char
 *           array: rows only, e.g. an address)
 *   unit    "ns" (exported to Prometheus in seconds), "bytes", "packets", ...; "id" is
 *           an identifier (shown in hex), "" a plain number
 *   FLAGS   0, or SHOW: a column of rtstat's table of the kind; LABEL (rows only): the
 *           value names its row (a Prometheus label, a column rtstat always shows)
 *   plus    "" or the names (space-separated) of counters whose values this one
 *           includes: its value is its field's plus theirs
 *   values  STATE: the names of the values 0, 1, ... (space-separated)
 *
 * RTUDP_KIND_AREA(area, struct, LIST, check) makes rtudp_area_<area> of such a list: the
 * table below.  kinds.c gathers them by proto/kinds.def; Python reads them through
 * cffi (rtudp.shmring.kinds) and knows no counter by name: stats(), rtstat, its JSON
 * and `rtudp metrics` iterate over the descriptions (Aeron's counters, the same idea).
 * Signedness and size come from the field's type.
 *
 * Rows.  A kind may also have rows: one per item it serves (a udt channel's sockets).
 * RTUDP_KIND_AREA_ROWS adds to the area a list of the row struct's counters, described
 * the same way, and a function that copies row i out of the area into a row struct,
 * bounds-checked, every value in range: stats() gives them as a list under the
 * rows' name, rtstat as a table, Prometheus as series labelled by the LABEL counters.
 */
#ifndef RTUDP_KINDS_H
#define RTUDP_KINDS_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

/* BEGIN CDEF */
/* counter types (struct rtudp_counter_desc.type) */
#define RTUDP_CTR_COUNTER 1
#define RTUDP_CTR_GAUGE 2
#define RTUDP_CTR_HISTOGRAM 3
#define RTUDP_CTR_STATE 4
#define RTUDP_CTR_TEXT 5
/* counter flags */
#define RTUDP_CTR_SIGNED 1                         /* a signed integer */
#define RTUDP_CTR_SHOW 2                           /* a column of rtstat's table of the kind */
#define RTUDP_CTR_LABEL 4                          /* rows: names the row (a Prometheus label) */
#define RTUDP_CTR_BARE 8                           /* its name is its stats key: no kind prefix
                                                    * (a protocol's own names, e.g. rtcp_*) */

/* One counter of a struct in shared memory. */
struct rtudp_counter_desc {
    const char *name;
    const char *unit;
    const char *help;
    const char *plus;                              /* "" or counters this one includes */
    const char *values;                            /* STATE: names of 0, 1, ... */
    uint32_t type;                                 /* RTUDP_CTR_* */
    uint32_t flags;
    uint32_t offset;                               /* from the start of the struct */
    uint32_t size;                                 /* 4, 8, sizeof(struct rtudp_hist); 0: a SUM */
};

/* A kind's area: how big, its counters, and whether it may be read. */
struct rtudp_kind_area {
    uint64_t size;                                 /* sizeof its struct; 0: the kind has none */
    const struct rtudp_counter_desc *counters;
    uint32_t n_counters;
    uint32_t pad;
    /* RTUDP_OK, or RTUDP_ECORRUPT with the reason in why; NULL: an area of `size`
     * bytes or more may be read */
    int (*check)(const void *area, uint64_t area_bytes, struct rtudp_check *why);
    /* its rows (RTUDP_KIND_AREA_ROWS), or rows_name NULL: none */
    const char *rows_name;                         /* stats() key: "connections" */
    const struct rtudp_counter_desc *row_counters;
    uint32_t n_row_counters;
    uint32_t pad2;
    uint64_t row_size;                             /* sizeof the row struct */
    /* row i of an area that passed `check` into *row (row_size bytes): 1 a row, 0 no
     * row there (a free slot), RTUDP_EINVAL past the last */
    int (*row_at)(const void *area, uint64_t area_bytes, uint32_t i, void *row);
};

/* A line of proto/kinds.def. */
struct rtudp_kind_info {
    const char *name;
    const char *prefix;                            /* of its counters' stats() keys */
    uint32_t code;                                 /* RTUDP_KIND_* */
    uint32_t pad;
    const struct rtudp_kind_area *area;
};

/* the kinds of proto/kinds.def, in its order; NULL past the last */
const struct rtudp_kind_info *rtudp_kind_at(uint32_t index);
/* The counters of a struct of the layout that is not a kind area: the channel block's
 * (RTUDP_CHANNEL_COUNTERS), the rings' and a worker slot's. */
struct rtudp_counter_group {
    const char *name;                              /* "channel", "tx_ring", "rx_ring", "worker" */
    const char *of;                                /* the struct, as cffi names it */
    const struct rtudp_counter_desc *counters;
    uint32_t n_counters;
    uint32_t pad;
    uint64_t size;                                 /* sizeof the struct */
};

/* group number index into *g: 1, or 0 past the last */
int rtudp_counter_group_at(uint32_t index, struct rtudp_counter_group *g);
/* END CDEF */

#define RTUDP_CTR_FLAG_0 0
#define RTUDP_CTR_FLAG_SHOW RTUDP_CTR_SHOW
#define RTUDP_CTR_FLAG_LABEL (RTUDP_CTR_LABEL | RTUDP_CTR_SHOW)
#define RTUDP_CTR_FLAG_BARE RTUDP_CTR_BARE
#define RTUDP_CTR_FLAG_SHOW_BARE (RTUDP_CTR_SHOW | RTUDP_CTR_BARE)
#define RTUDP_CTR_SIGNED_IF(x) _Generic((x), int64_t: RTUDP_CTR_SIGNED, int32_t: RTUDP_CTR_SIGNED, \
                                        default: 0)

/* the entries of a list, for the struct rtudp_ctr_struct names (RTUDP_COUNTER_TABLE) */
#define RTUDP_CTR_ENTRY(member, name, type, unit, flags, help, plus, values)                      \
    {name, unit, help, plus, values, RTUDP_CTR_##type,                                           \
     RTUDP_CTR_FLAG_##flags | RTUDP_CTR_SIGNED_IF(((rtudp_ctr_struct *)0)->member),            \
     (uint32_t)offsetof(rtudp_ctr_struct, member), (uint32_t)sizeof(((rtudp_ctr_struct *)0)->member)},
#define RTUDP_CTR_SUM_ENTRY(name, unit, flags, help, plus)                                        \
    {name, unit, help, plus, "", RTUDP_CTR_COUNTER, RTUDP_CTR_FLAG_##flags, 0, 0},

/* static const struct rtudp_counter_desc table[] of LIST's counters of struct S (one
 * table a file: the typedef is the file's) */
#define RTUDP_COUNTER_TABLE(table, S, LIST)                                                      \
    typedef S rtudp_ctr_struct;                                                                  \
    static const struct rtudp_counter_desc table[] = {LIST(RTUDP_CTR_ENTRY, RTUDP_CTR_SUM_ENTRY)}

/* static const struct rtudp_counter_desc *fn(uint32_t *n): LIST's counters of struct S,
 * *n of them (the typedef is the function's own, so a file may hold several) */
#define RTUDP_COUNTER_FUNCTION(fn, S, LIST)                                                      \
    static const struct rtudp_counter_desc *fn(uint32_t *n)                                      \
    {                                                                                            \
        typedef S rtudp_ctr_struct;                                                              \
        static const struct rtudp_counter_desc t[] = {LIST(RTUDP_CTR_ENTRY, RTUDP_CTR_SUM_ENTRY)}; \
        *n = (uint32_t)(sizeof t / sizeof t[0]);                                                 \
        return t;                                                                                \
    }

/* const struct rtudp_kind_area rtudp_area_<area>: the kind area struct S, its counters
 * LIST, its check (NULL: none) */
#define RTUDP_KIND_AREA(area, S, LIST, check_fn)                                                 \
    RTUDP_COUNTER_TABLE(rtudp_counters_##area, S, LIST);                                         \
    const struct rtudp_kind_area rtudp_area_##area = {                                           \
        sizeof(S), rtudp_counters_##area,                                                        \
        (uint32_t)(sizeof rtudp_counters_##area / sizeof rtudp_counters_##area[0]), 0, check_fn, \
        NULL, NULL, 0, 0, 0, NULL}

/* the same with rows: their stats() name, the row struct R, its counters ROW_LIST
 * (their table made by RTUDP_ROW_TABLE(row_table, R, ROW_LIST) in the row function's
 * file) and the function that fills one (struct rtudp_kind_area.row_at) */
#define RTUDP_KIND_AREA_ROWS(area, S, LIST, check_fn, rows, R, ROW_LIST, row_table, row_fn)     \
    RTUDP_COUNTER_TABLE(rtudp_counters_##area, S, LIST);                                         \
    const struct rtudp_kind_area rtudp_area_##area = {                                           \
        sizeof(S), rtudp_counters_##area,                                                        \
        (uint32_t)(sizeof rtudp_counters_##area / sizeof rtudp_counters_##area[0]), 0, check_fn, \
        rows, row_table, RTUDP_COUNTER_COUNT(ROW_LIST), 0, sizeof(R), row_fn}

/* const struct rtudp_counter_desc row_table[]: LIST's counters of the row struct R (an
 * extern table, for RTUDP_KIND_AREA_ROWS in the area's file; one a file) */
#define RTUDP_ROW_TABLE(row_table, R, LIST)                                                     \
    typedef R rtudp_ctr_struct;                                                                  \
    const struct rtudp_counter_desc row_table[] = {LIST(RTUDP_CTR_ENTRY, RTUDP_CTR_SUM_ENTRY)}

/* the entries of a list, as a constant expression */
#define RTUDP_CTR_ONE(...) +1
#define RTUDP_COUNTER_COUNT(LIST) (0 LIST(RTUDP_CTR_ONE, RTUDP_CTR_ONE))

#endif /* RTUDP_KINDS_H */
