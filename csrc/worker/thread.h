/*
 * thread.h - starting one of a worker's helper threads (the RX thread, the guard).
 */
#ifndef RTUDP_WORKER_THREAD_H
#define RTUDP_WORKER_THREAD_H

#include <pthread.h>
#include <stddef.h>

/* Starts fn(arg) on a `stack`-byte stack (mlockall would pin the default 8 MiB), with
 * the creator's scheduling policy and priority, and every signal blocked: signals are
 * the TX thread's, which decides when to exit.  0, or pthread_create's error number. */
int rtudp_w_thread_start(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg);

#endif
