/*
 * conductor.h - a worker's conductor thread: the heavy half of a channel's ADD and
 * REMOVE, done beside the TX thread instead of in it.
 *
 * Adding a channel maps and locks its segment, sets its sockets up and allocates its
 * in-flight tracker and TX stamp waiters: a tenth of a millisecond and more of page
 * faults and system calls.  Done on the TX thread, that time is taken from every other
 * channel's deadlines, and a pool that moves channels between workers (packing.py)
 * does it thousands of times while they all run.  So the TX thread hands an ADD to the
 * conductor (rtudp_conductor_give) and goes on serving; the conductor prepares the
 * channel (channels.c, rtudp_chan_prepare), and the TX thread takes it back
 * (rtudp_conductor_take), in the order given, for the short part that touches its own
 * tables (rtudp_chan_activate) and the reply.  A removed channel's memory goes back the
 * same way (rtudp_chan_release) after the TX thread let go of it.
 *
 * The conductor runs at SCHED_OTHER on the worker's CPU: it gets the time the TX and
 * RX threads leave, and never delays them.  Its lock is priority-inheriting, so the TX
 * thread never waits behind it for long.  TX thread: give, take, has_done; the
 * conductor thread: everything else here.
 */
#ifndef RTUDP_WORKER_CONDUCTOR_H
#define RTUDP_WORKER_CONDUCTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ring.h"
#include "rtudp_shm.h"

struct rtudp_chan;

/* its name (comm): the supervisor checks every worker thread's policy but this one's
 * (workers/process.py, CONDUCTOR_THREAD) */
#define RTUDP_CONDUCTOR_THREAD "rtudp-conductor"

enum rtudp_job_kind {
    RTUDP_JOB_PREPARE, /* an ADD: prepare `chan` from the fields below (or pass rc on) */
    RTUDP_JOB_RELEASE, /* free `chan`, which the TX thread let go of */
};

struct rtudp_job {
    struct rtudp_job *next;
    enum rtudp_job_kind kind;
    /* the ADD it answers */
    uint32_t op, slot;
    char name[RTUDP_NAME_MAX + 1];
    int fd, tx_fd, standby;
    int take_over;         /* a TAKE_OVER: served once the channel block says released */
    int admitted;          /* it passed the checks at receipt (control.c), and holds its slot */
    const char *pool_name;
    /* PREPARE: RTUDP_OK and the prepared channel, or why not (given with an error rc,
     * the job only keeps its place in the order of the replies) */
    int rc;
    struct rtudp_chan *chan;
    char msg[sizeof(((struct rtudp_reply *)0)->msg)];
};

struct rtudp_conductor {
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rtudp_job *todo, **todo_tail;   /* for the conductor, in order (mu) */
    struct rtudp_job *done, **done_tail;   /* prepared, for the TX thread, in order (mu) */
    atomic_uint done_posted;               /* bumped for each job put in `done` */
    uint32_t done_seen;                    /* TX thread: done_posted when last taken */
    uint32_t preparing;                    /* TX thread: ADDs given, not yet taken back */
    int stop;                              /* (mu) */
    struct rtudp_doorbell *bell;           /* the TX thread's: rung for each prepared job */
};

/* start the thread (0, or an error number); the TX thread is woken by `bell` */
int rtudp_conductor_start(struct rtudp_conductor *k, struct rtudp_doorbell *bell);
/* finish the releases given, close what was prepared and not taken, join the thread */
void rtudp_conductor_stop(struct rtudp_conductor *k);
/* hand a job over (TX thread, between start and stop) */
void rtudp_conductor_give(struct rtudp_conductor *k, struct rtudp_job *j);
/* whether a prepared job waits (TX thread, at every wake-up: no lock) */
int rtudp_conductor_has_done(const struct rtudp_conductor *k);
/* the next prepared job, in the order given, or NULL (TX thread) */
struct rtudp_job *rtudp_conductor_take(struct rtudp_conductor *k);

#endif
