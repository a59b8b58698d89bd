/*
 * async_wait.h - a client's side of the async waiters (rtudp_shm.h, struct
 * rtudp_async_wait): register an eventfd of this process on a channel, arm it before
 * the event loop waits, disarm, release.  The worker's side is worker/asyncwake.c.
 *
 * The handshake that makes a wake-up impossible to lose:
 *   client: arm (atomic or of its bit, then a full fence); look at the ring again;
 *           only if still nothing is there, let the event loop wait on the eventfd.
 *   worker: publish (the ring's release store); a full fence; take the armed bits
 *           (exchange with 0); write each taken slot's eventfd.
 * Either the client's second look sees the worker's record, or the worker's exchange
 * sees the client's bit.  Readiness goes through a file descriptor, so any event loop
 * (asyncio, uvloop, ...) waits on it with no thread and no polling; and the worker
 * writes only while someone waits, so a busy channel costs it nothing extra.
 *
 * The CDEF block is given to cffi.
 */
#ifndef RTUDP_ASYNC_WAIT_H
#define RTUDP_ASYNC_WAIT_H

#include <stdint.h>

#include "rtudp_shm.h"

/* BEGIN CDEF */
/*
 * Take a free slot (or one of a process that no longer exists) of block for eventfd
 * `fd` of process `pid`, publish it, and tell the channel's worker (its slot `ws`):
 * it answers in the slot's status and writes the eventfd once.  The slot index, or
 * -1 when every slot is taken by a live process.
 */
int rtudp_async_register(struct rtudp_channel_block *b, struct rtudp_worker_slot *ws,
                         uint32_t pid, int32_t fd);
/* RTUDP_ASYNC_PENDING / OK / FAILED for the slot's current registration; *error the
 * errno of a failure */
int rtudp_async_status(struct rtudp_channel_block *b, int slot, int32_t *error);
/* set the slot's bit for `dir` (RTUDP_ASYNC_RX / TX), then a full fence: the caller
 * looks at the ring after this, and waits only if still nothing is there */
void rtudp_async_arm(struct rtudp_channel_block *b, int slot, int dir);
/* clear the slot's bit for `dir` (a wait that ended without a wake-up) */
void rtudp_async_disarm(struct rtudp_channel_block *b, int slot, int dir);
/* give the slot back (its bits cleared); 0, or -1 if it is not pid's */
int rtudp_async_release(struct rtudp_channel_block *b, int slot, uint32_t pid);
/* END CDEF */

#endif /* RTUDP_ASYNC_WAIT_H */
