/*
 * txjournal.h - which TX records were in the kernel's hands when a worker died.
 *
 * The worker marks a record SENT in its ring only after sendmmsg returns, and a
 * SIGKILL lands exactly there (on the way back from the system call), so without
 * more a successor would send a whole batch again.  Before each send the worker
 * writes the batch's ring positions and first TX-stamp key into the channel
 * block's journal (rtudp_shm.h, struct rtudp_tx_journal); the socket outlives the
 * worker (the supervisor holds it), and so do the kernel's TX stamps on its error
 * queue, each carrying its packet's key.  The successor reads those stamps and
 * frees exactly the records they prove gone; the rest are sent again.  A missing
 * stamp can only cause a resend, never a loss.
 *
 * Limits: a socket without software TX stamps journals nothing (its in-flight batch
 * is resent); a NIC that stamps after the send call returns (a queued qdisc) can
 * stamp after the successor looked, and that packet is resent too.
 */
#ifndef RTUDP_TXJOURNAL_H
#define RTUDP_TXJOURNAL_H

#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

/* Before a send call: records pos[0..n) go with keys key0, key0 + 1, ... (one_key:
 * all with key0, a GSO send).  n <= RTUDP_TX_JOURNAL_MAX (more is cut: the rest are
 * simply not journalled, so sent again after a kill). */
void rtudp_txj_begin(struct rtudp_tx_journal *j, uint32_t key0, int one_key, const uint64_t *pos,
                     uint32_t n);
/* After the call returned and every packet it sent was marked SENT. */
void rtudp_txj_end(struct rtudp_tx_journal *j);

struct rtudp_txj_result {
    uint32_t journalled;   /* records the dead worker was sending */
    uint32_t left;         /* stamped: marked SENT, not sent again */
    uint32_t resent;       /* no stamp: left in the ring, sent again */
    uint32_t invalid;      /* journal entries that are no unsent record of the ring */
};

/* The pure part: stamped(ctx, key) says whether a TX stamp with that key was seen.
 * Walks the ring from its head to the last journalled position, marks SENT each
 * unsent record that is journalled with a stamped key, clears the journal and adds
 * to its counters.  Never marks anything the journal does not name at a record
 * boundary of the ring. */
void rtudp_txj_recover_with(struct rtudp_tx_journal *j, struct rtudp_mpsc *tx,
                            int (*stamped)(void *ctx, uint32_t key), void *ctx,
                            struct rtudp_txj_result *out);
/* At (re)start on a channel, before its TX ring is read: drain fd's error queue for
 * the stamps of the journalled keys, then rtudp_txj_recover_with. */
void rtudp_txj_recover(struct rtudp_tx_journal *j, struct rtudp_mpsc *tx, int fd,
                       struct rtudp_txj_result *out);

#endif /* RTUDP_TXJOURNAL_H */
