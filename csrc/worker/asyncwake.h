/*
 * asyncwake.h - the worker's side of the async waiters (../async_wait.h has the
 * client's side and the handshake): answer a registration by taking a duplicate of
 * the client's eventfd (pidfd_getfd), and write the eventfds of the slots armed for
 * what just happened.
 *
 * Each thread keeps its own duplicates (the RX side's in struct rtudp_rx_chan, the TX
 * thread's in struct rtudp_chan), so neither closes an fd the other writes.  A
 * duplicate is taken again when the slot's generation changes (a new registration),
 * and a restarted worker, which starts with none, takes them when it first needs
 * them: the registrations are in shared memory, so they survive it.
 */
#ifndef RTUDP_ASYNCWAKE_H
#define RTUDP_ASYNCWAKE_H

#include <stdint.h>

#include "rtudp_shm.h"

/* One thread's duplicates of a channel's waiters' eventfds. */
struct rtudp_async_fds {
    uint32_t gen[RTUDP_ASYNC_SLOTS];   /* the registration fd[i] belongs to (0: none) */
    int fd[RTUDP_ASYNC_SLOTS];         /* -1: none (or it could not be taken: err[i]) */
    int err[RTUDP_ASYNC_SLOTS];
};

void rtudp_async_fds_init(struct rtudp_async_fds *f);
void rtudp_async_fds_close(struct rtudp_async_fds *f);
/* after publishing what waiters of `dir` (RTUDP_ASYNC_RX / TX) wait for: wake the
 * armed ones (one fence and one load when none is) */
void rtudp_async_wake(struct rtudp_async_wait *a, int dir, struct rtudp_async_fds *f);
/* answer every registration not answered yet: status OK (and one wake-up) or FAILED */
void rtudp_async_answer(struct rtudp_async_wait *a, struct rtudp_async_fds *f);

#endif /* RTUDP_ASYNCWAKE_H */
