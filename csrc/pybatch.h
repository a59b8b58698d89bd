/*
 * pybatch.h - hand batches of records to Python as one pickle stream.
 *
 * cffi cannot return Python objects, and cutting a buffer into N bytes objects in
 * Python costs ~90 ns each.  Pickle protocol 3 (stable, documented in pickletools)
 * has an opcode for "bytes of this length", so we write
 *     PROTO 3, EMPTY_LIST, MARK, (BINBYTES len32 data)*, APPENDS, STOP
 * and the C unpickler builds the list[bytes] in one loop (~35 ns each).  The
 * stream is written by us, in private memory, around lengths that were validated;
 * nothing from shared memory is ever interpreted as an opcode.
 */
#ifndef RTUDP_PYBATCH_H
#define RTUDP_PYBATCH_H

#include "ring.h"

/* BEGIN CDEF */
/* Up to max_n records as a pickled list[bytes] in buf; *used = stream bytes.
 * Returns the record count (> 0) or a negative RTUDP_E* code (RTUDP_EMPTY). */
int64_t rtudp_mpsc_get_pickled(struct rtudp_mpsc *r, uint8_t *buf, uint64_t buflen,
                               uint64_t max_n, uint64_t *used);
int64_t rtudp_bcast_read_pickled(struct rtudp_bcast *r, struct rtudp_bcast_reader *rd,
                                 uint8_t *buf, uint64_t buflen, uint64_t max_n, uint64_t *used);
/* END CDEF */

#endif
