/*
 * thread.c - starting one of a worker's helper threads (thread.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "thread.h"

#include <signal.h>

int rtudp_w_thread_start(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(t, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return e;
}
