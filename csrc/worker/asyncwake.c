/* asyncwake.c - the worker's side of the async waiters (asyncwake.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "asyncwake.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "pidfd.h"
#include "shm_access.h"

void rtudp_async_fds_init(struct rtudp_async_fds *f)
{
    for (int i = 0; i < RTUDP_ASYNC_SLOTS; i++) {
        f->gen[i] = 0;
        f->fd[i] = -1;
        f->err[i] = 0;
    }
}

void rtudp_async_fds_close(struct rtudp_async_fds *f)
{
    for (int i = 0; i < RTUDP_ASYNC_SLOTS; i++)
        if (f->fd[i] >= 0)
            close(f->fd[i]);
    rtudp_async_fds_init(f);
}

/* Only an eventfd is written: a client that registered another kind of file (a pipe
 * would block this thread once full) gets EINVAL.  Non-blocking: an eventfd whose
 * counter a client filled makes the write fail, not wait. */
static int take_eventfd(uint32_t pid, int32_t their_fd)
{
    const char *step;
    int fd = rtudp_fd_of((pid_t)pid, their_fd, &step);
    if (fd < 0)
        return fd;
    char path[32], what[32] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, what, sizeof what - 1);
    int fl = fcntl(fd, F_GETFL);
    if (n <= 0 || strcmp(what, "anon_inode:[eventfd]") != 0 || fl < 0 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

/* slot i's eventfd as this thread holds it: taken again for a new registration */
static int fd_for(struct rtudp_async_wait *a, struct rtudp_async_fds *f, int i)
{
    struct rtudp_async_slot *s = &a->slot[i];
    uint32_t gen = load_acquire(&s->gen); /* publishes pid and fd */
    if (gen == f->gen[i])
        return f->fd[i];
    if (f->fd[i] >= 0)
        close(f->fd[i]);
    uint32_t pid = load_relaxed(&s->pid);
    int fd = pid ? take_eventfd(pid, load_relaxed(&s->fd)) : -ESRCH;
    f->gen[i] = gen;
    f->fd[i] = fd >= 0 ? fd : -1;
    f->err[i] = fd >= 0 ? 0 : -fd;
    return f->fd[i];
}

static void poke(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so the loop has a wake-up waiting anyway */
    }
}

void rtudp_async_wake(struct rtudp_async_wait *a, int dir, struct rtudp_async_fds *f)
{
    /* pairs with the fence in rtudp_async_arm: our records are visible to a client
     * whose bit we do not see, or we see its bit */
    atomic_thread_fence(memory_order_seq_cst);
    if (load_relaxed(&a->armed[dir]) == 0)
        return;
    uint32_t bits = atomic_exchange_explicit(SHARED(&a->armed[dir]), 0, memory_order_seq_cst);
    bits &= (1u << RTUDP_ASYNC_SLOTS) - 1; /* a client may scribble on the word */
    while (bits) {
        int i = __builtin_ctz(bits);
        bits &= bits - 1;
        poke(fd_for(a, f, i));
    }
}

void rtudp_async_answer(struct rtudp_async_wait *a, struct rtudp_async_fds *f)
{
    for (int i = 0; i < RTUDP_ASYNC_SLOTS; i++) {
        struct rtudp_async_slot *s = &a->slot[i];
        uint32_t gen = load_acquire(&s->gen);
        if (gen == 0 || load_relaxed(&s->pid) == 0 || load_relaxed(&s->answered_gen) == gen)
            continue;
        int fd = fd_for(a, f, i);
        store_relaxed(&s->status, fd >= 0 ? RTUDP_ASYNC_OK : RTUDP_ASYNC_FAILED);
        store_relaxed(&s->error, fd >= 0 ? 0 : f->err[i]);
        store_release(&s->answered_gen, gen);
        poke(fd);
    }
}
