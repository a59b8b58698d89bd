/*
 * conductor.c - a worker's conductor thread (conductor.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conductor.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inflight.h"
#include "thread.h"
#include "worker.h"

/* the conductor's own stack: channels.c's preparation needs little */
#define CONDUCTOR_STACK (256u << 10)

static void do_job(struct rtudp_job *j)
{
    if (j->kind == RTUDP_JOB_RELEASE) {
        rtudp_chan_release(j->chan);
        free(j);
        return;
    }
    if (j->rc == RTUDP_OK)
        j->rc = rtudp_chan_prepare(j->pool_name, j->slot, j->name, j->fd, j->tx_fd,
                                   (j->standby ? RTUDP_PREP_STANDBY : 0u) |
                                       (j->take_over ? RTUDP_PREP_ADOPT : 0u),
                                   &j->chan, j->msg, sizeof j->msg);
}

/* the in-flight tracker a channel like the one `j` prepared needs (0: none), made
 * ready for the next while the worker waits for it (inflight.h, the spare) */
static uint32_t spare_for(const struct rtudp_job *j)
{
    return j->rc == RTUDP_OK && j->chan && j->chan->inflight.e ? j->chan->inflight.capacity : 0;
}

static void append(struct rtudp_job ***tail, struct rtudp_job *j)
{
    j->next = NULL;
    **tail = j;
    *tail = &j->next;
}

static struct rtudp_job *pop(struct rtudp_job **head, struct rtudp_job ***tail)
{
    struct rtudp_job *j = *head;
    if (j && !(*head = j->next))
        *tail = head;
    return j;
}

/* a prepared job done: queued for the TX thread, which the bell wakes */
static void post_done(struct rtudp_conductor *k, struct rtudp_job *j)
{
    pthread_mutex_lock(&k->mu);
    append(&k->done_tail, j);
    pthread_mutex_unlock(&k->mu);
    atomic_fetch_add_explicit(&k->done_posted, 1, memory_order_release);
    rtudp_bell_ring(k->bell);
}

static void *conduct(void *arg)
{
    struct rtudp_conductor *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        struct rtudp_job *j = pop(&k->todo, &k->todo_tail);
        if (!j) {
            if (k->stop)
                break;
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        pthread_mutex_unlock(&k->mu);
        enum rtudp_job_kind kind = j->kind;
        do_job(j);
        if (kind == RTUDP_JOB_PREPARE) {
            uint32_t next = spare_for(j);
            post_done(k, j); /* the TX thread's from here */
            if (next)
                rtudp_inflight_keep_spare(next);
        }
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    rtudp_inflight_drop_spare();
    return NULL;
}

int rtudp_conductor_start(struct rtudp_conductor *k, struct rtudp_doorbell *bell)
{
    memset(k, 0, sizeof *k);
    k->todo_tail = &k->todo;
    k->done_tail = &k->done;
    k->bell = bell;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    /* the TX thread (real-time) may wait for it: the holder runs at its priority */
    pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
    int e = pthread_mutex_init(&k->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (e)
        return e;
    if ((e = pthread_cond_init(&k->cv, NULL)) != 0) {
        pthread_mutex_destroy(&k->mu);
        return e;
    }
    if ((e = rtudp_w_thread_start(&k->thread, CONDUCTOR_STACK, conduct, k)) != 0) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        return e;
    }
    /* below the TX and RX threads on their CPU, so it takes only the time they leave;
     * named, so the supervisor leaves that policy alone (workers/process.py).  Both
     * before the worker says it runs, when the supervisor checks its threads. */
    struct sched_param sp = {.sched_priority = 0};
    pthread_setschedparam(k->thread, SCHED_OTHER, &sp);
    pthread_setname_np(k->thread, RTUDP_CONDUCTOR_THREAD);
    k->running = 1;
    return 0;
}

void rtudp_conductor_stop(struct rtudp_conductor *k)
{
    if (!k->running)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    k->running = 0;
    /* prepared and never taken: nobody waits for their replies any more */
    struct rtudp_job *j;
    while ((j = pop(&k->done, &k->done_tail))) {
        if (j->chan)
            rtudp_chan_release(j->chan);
        free(j);
    }
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
}

void rtudp_conductor_give(struct rtudp_conductor *k, struct rtudp_job *j)
{
    if (j->kind == RTUDP_JOB_PREPARE)
        k->preparing++;
    pthread_mutex_lock(&k->mu);
    append(&k->todo_tail, j);
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

int rtudp_conductor_has_done(const struct rtudp_conductor *k)
{
    return atomic_load_explicit(&k->done_posted, memory_order_acquire) != k->done_seen;
}

struct rtudp_job *rtudp_conductor_take(struct rtudp_conductor *k)
{
    /* read before taking: jobs posted later bump it again and are seen next time */
    uint32_t posted = atomic_load_explicit(&k->done_posted, memory_order_acquire);
    if (posted == k->done_seen)
        return NULL;
    pthread_mutex_lock(&k->mu);
    struct rtudp_job *j = pop(&k->done, &k->done_tail);
    pthread_mutex_unlock(&k->mu);
    if (!j) {
        k->done_seen = posted;
        return NULL;
    }
    k->preparing--;
    return j;
}
