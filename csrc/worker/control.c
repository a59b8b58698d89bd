/*
 * control.c - what the supervisor tells the worker and how the worker tells it it
 * lives: the command socket (ADD, ADD_STANDBY, REMOVE, STOP and their replies; an ADD's
 * heavy half is the conductor's, conductor.h) and the
 * 100 ms tick (our heartbeat, the supervisor's liveness, dead-claim recovery; 1 s
 * apart while the worker rests, and when to rest: sched.c, rtudp_w_rest).
 * TX thread only, between the loop's turns (txloop.c); the channel table it changes
 * is channels.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#endif
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "procstat.h"
#include "readers.h"
#include "readyset.h"
#include "segment.h"
#include "txfault.h"
#include "worker.h"

volatile sig_atomic_t rtudp_w_signalled;

/* ------------------------------------------------------------------ commands */

static void reply(struct rtudp_worker *w, uint32_t op, uint32_t slot, int status, const char *msg)
{
    struct rtudp_reply r;
    memset(&r, 0, sizeof r);
    r.op = op;
    r.slot = slot;
    r.status = status;
    snprintf(r.msg, sizeof r.msg, "%s", msg ? msg : "");
    /* never block on a supervisor that stopped reading: it will see us go DEAD */
    if (send(w->cmd_fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof r)
        fprintf(stderr, "rtudp-worker %u: reply to op %u slot %u not sent: %s\n", w->id, op,
                slot, strerror(errno));
}

/* fds[0]: the channel socket; fds[1], when given: a socket of the same address that
 * only sends (workers/sockets.py says why) */
static void close_all(const int *fds, int nfd)
{
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
}

void rtudp_w_release_later(struct rtudp_worker *w, struct rtudp_chan *c)
{
    struct rtudp_job *j = calloc(1, sizeof *j);
    if (!j) {
        rtudp_chan_release(c); /* here, then */
        return;
    }
    j->kind = RTUDP_JOB_RELEASE;
    j->chan = c;
    rtudp_conductor_give(&w->conductor, j);
}

/* An ADD goes to the conductor, which prepares the channel; rtudp_w_take_prepared
 * activates it and replies.  One refused here goes the same way, with its error, so
 * that every ADD is answered in the order it came. */
static void add_channel(struct rtudp_worker *w, const struct rtudp_cmd *cmd, const int *fds,
                        int nfd)
{
    struct rtudp_job *j = calloc(1, sizeof *j);
    if (!j) {
        close_all(fds, nfd);
        reply(w, cmd->op, cmd->slot, RTUDP_ESYS, "out of memory for the ADD");
        return;
    }
    j->kind = RTUDP_JOB_PREPARE;
    j->op = cmd->op;
    j->slot = cmd->slot;
    j->pool_name = w->pool_name;
    snprintf(j->name, sizeof j->name, "%.*s", RTUDP_NAME_MAX, cmd->name);
    j->fd = nfd > 0 ? fds[0] : -1;
    j->tx_fd = nfd > 1 ? fds[1] : -1;
    j->standby = cmd->op == RTUDP_CMD_ADD_STANDBY;
    j->take_over = cmd->op == RTUDP_CMD_TAKE_OVER;
    j->rc = RTUDP_OK;
    if (j->fd < 0) {
        j->rc = RTUDP_EINVAL;
        snprintf(j->msg, sizeof j->msg, "ADD carries no socket (SCM_RIGHTS)");
    } else if (cmd->slot >= RTUDP_MAX_CHANNELS) {
        j->rc = RTUDP_EINVAL;
        snprintf(j->msg, sizeof j->msg, "slot %u out of range 0..%d", cmd->slot,
                 RTUDP_MAX_CHANNELS - 1);
    } else if (w->chans[cmd->slot]) {
        j->rc = RTUDP_EINVAL;
        snprintf(j->msg, sizeof j->msg, "slot %u already serves channel '%s'", cmd->slot,
                 w->chans[cmd->slot]->name);
    } else if (rtudp_slotbits_has(w->adding, cmd->slot)) { /* its socket is being set up for the one before */
        j->rc = RTUDP_EINVAL;
        snprintf(j->msg, sizeof j->msg, "slot %u is already being added", cmd->slot);
    }
    if (j->rc != RTUDP_OK) {
        close_all(fds, nfd);
        j->fd = j->tx_fd = -1;
    } else {
        j->admitted = 1;
        rtudp_slotbits_add(w->adding, cmd->slot);
        if (j->standby && j->tx_fd >= 0) { /* it sends on the channel socket only */
            close(j->tx_fd);
            j->tx_fd = -1;
        }
    }
    rtudp_conductor_give(&w->conductor, j);
}

static void handle(struct rtudp_worker *w, const struct rtudp_cmd *cmd, const int *fds, int nfd)
{
    switch (cmd->op) {
    case RTUDP_CMD_REMOVE: {
        struct rtudp_chan *c = cmd->slot < RTUDP_MAX_CHANNELS ? w->chans[cmd->slot] : NULL;
        if (c) {
            rtudp_chan_drop(w, c);
            rtudp_w_let_go(w, c); /* to the worker taking it over, if one waits */
            rtudp_w_release_later(w, c);
            reply(w, cmd->op, cmd->slot, RTUDP_OK, "removed");
        } else if (cmd->slot < RTUDP_MAX_CHANNELS && rtudp_w_drop_awaited(w, cmd->slot)) {
            reply(w, cmd->op, cmd->slot, RTUDP_OK, "removed before it was taken over");
        } else {
            reply(w, cmd->op, cmd->slot, RTUDP_EINVAL, "no channel in that slot");
        }
        break;
    }
    case RTUDP_CMD_STOP:
        reply(w, cmd->op, cmd->slot, RTUDP_OK, "stopping");
        w->exiting = 1;
        break;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown command op %u", cmd->op);
        reply(w, cmd->op, cmd->slot, RTUDP_EINVAL, msg);
    }
    }
    close_all(fds, nfd); /* only ADD takes sockets */
}

#define MAX_FDS 4 /* more than the two ADD carries: closed, never leaked */

static int well_formed(const struct rtudp_held_cmd *h)
{
    return (size_t)h->len == sizeof h->cmd && !(h->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
           h->nfd <= 2;
}

/* a command that is not an ADD, or not well formed: answered now */
static void answer(struct rtudp_worker *w, struct rtudp_held_cmd *h)
{
    if (!well_formed(h)) {
        char msg[120];
        snprintf(msg, sizeof msg, "bad command: %zd bytes (expected %zu), %d fds%s", h->len,
                 sizeof h->cmd, h->nfd, (h->msg_flags & MSG_CTRUNC) ? ", control truncated" : "");
        close_all(h->fds, h->nfd);
        reply(w, h->len >= 4 ? h->cmd.op : 0, h->len >= 8 ? h->cmd.slot : 0, RTUDP_EINVAL, msg);
        return;
    }
    handle(w, &h->cmd, h->fds, h->nfd);
}

/* the next command from the socket into h: 1, or 0 when none waits, -1 when the worker
 * is to exit */
static int read_command(struct rtudp_worker *w, struct rtudp_held_cmd *h)
{
    for (;;) {
        union {
            char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        memset(h, 0, sizeof *h);
        struct iovec iov = {.iov_base = &h->cmd, .iov_len = sizeof h->cmd};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                           .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(w->cmd_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            fprintf(stderr, "rtudp-worker %u: command socket: %s; exiting\n", w->id,
                    strerror(errno));
            w->exiting = 1;
            return -1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
                c->cmsg_len < CMSG_LEN(0))
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (h->nfd < MAX_FDS)
                    h->fds[h->nfd++] = fd;
                else
                    close(fd);
            }
        }
        if (n == 0 && h->nfd == 0) {
            /* the supervisor closed its end (or died without the death signal) */
            w->exiting = 1;
            return -1;
        }
        h->len = n;
        h->msg_flags = m.msg_flags;
        return 1;
    }
}

/* A word in shared memory, not a poll() of the socket: the TX loop asks at every
 * wake-up, and a system call there sat between a producer's bell and its send. */
int rtudp_w_cmd_ready(const struct rtudp_worker *w)
{
    return load_acquire(&w->me->commands_posted) != w->commands_seen;
}

static void drain_commands(struct rtudp_worker *w)
{
    /* read before draining: commands posted later bump it again and are seen next time */
    uint32_t posted = load_acquire(&w->me->commands_posted);
    while (!w->exiting) {
        if (w->held.pending) {
            /* those after it wait in the socket until it is answered (take_prepared) */
            w->commands_seen = posted;
            return;
        }
        struct rtudp_held_cmd h;
        int got = read_command(w, &h);
        if (got < 0)
            return;
        if (got == 0) {
            w->commands_seen = posted;
            return;
        }
        /* a resting worker polls again first: a channel added now is about to be used */
        rtudp_w_work(w, rtudp_now_ns());
        if (well_formed(&h) && (h.cmd.op == RTUDP_CMD_ADD || h.cmd.op == RTUDP_CMD_ADD_STANDBY ||
                                h.cmd.op == RTUDP_CMD_TAKE_OVER))
            add_channel(w, &h.cmd, h.fds, h.nfd);
        else if (w->conductor.preparing) {
            w->held = h; /* answered after the ADDs before it */
            w->held.pending = 1;
        } else
            answer(w, &h);
    }
}

void rtudp_w_poll_commands(struct rtudp_worker *w)
{
    drain_commands(w);
    /* the REMOVEs read together cost one pass over the timer queue */
    rtudp_chan_forget_timers(w);
}

/* a prepared channel served from now on, or awaited from the worker that serves it */
static int serve_or_await(struct rtudp_worker *w, struct rtudp_job *j)
{
    if (!j->take_over)
        return rtudp_chan_activate(w, j->chan, j->msg, sizeof j->msg);
    if (rtudp_channel_released(j->chan->block))
        return rtudp_w_serve_released(w, j->chan, j->msg, sizeof j->msg);
    int rc = rtudp_w_await_handoff(w, j->chan, j->msg, sizeof j->msg);
    if (rc == RTUDP_OK)
        snprintf(j->msg, sizeof j->msg, "prepared; served once released");
    return rc;
}

int rtudp_w_prepared_ready(const struct rtudp_worker *w)
{
    return rtudp_conductor_has_done(&w->conductor);
}

void rtudp_w_take_prepared(struct rtudp_worker *w)
{
    struct rtudp_job *j;
    while ((j = rtudp_conductor_take(&w->conductor)) != NULL) {
        int rc = j->rc;
        if (j->admitted)
            rtudp_slotbits_remove(w->adding, j->slot);
        if (rc == RTUDP_OK && (rc = serve_or_await(w, j)) != RTUDP_OK)
            rtudp_w_release_later(w, j->chan);
        if (rc != RTUDP_OK)
            fprintf(stderr, "rtudp-worker %u: channel '%s' (slot %u) not added: %s\n", w->id,
                    j->name, j->slot, j->msg);
        reply(w, j->op, j->slot, rc, j->msg);
        free(j);
    }
    rtudp_chan_forget_timers(w); /* (a channel that failed to activate left its mark) */
    if (w->held.pending && !w->conductor.preparing && !w->exiting) {
        struct rtudp_held_cmd h = w->held;
        w->held.pending = 0;
        answer(w, &h);
        rtudp_w_poll_commands(w); /* those that waited behind it */
    }
}

/* ------------------------------------------------------------------ liveness */

/* the tick's sweep of the channels: a tenth of them a tick (each at least once a second
 * at RTUDP_W_HEARTBEAT_NS = 100 ms; one moved into a swept place by a removal waits one
 * round more), all of them at a resting tick (RTUDP_W_REST_TICK_NS, 1 s), and never
 * fewer than SWEEP_MIN */
#define SWEEP_TICKS 10u
#define SWEEP_MIN 64u
_Static_assert(RTUDP_W_HEARTBEAT_NS * SWEEP_TICKS <= 1000000000LL &&
                   RTUDP_W_REST_TICK_NS <= 1000000000LL,
               "each channel is swept at least once a second");

/* The death signal (sched.c) normally ends us first; this also covers a supervisor
 * that is not our parent, or a death signal that did not come.  A pidfd names the
 * process, not the number, so a reused pid cannot pass for it; without one (a kernel
 * before 5.3) its pid has to do. */
static int supervisor_gone(const struct rtudp_worker *w)
{
    if (w->sup_pidfd >= 0) {
        struct pollfd p = {.fd = w->sup_pidfd, .events = POLLIN};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
    }
    return w->sup_pid > 0 && rtudp_pid_exited((int32_t)w->sup_pid);
}

/* whether the worker rests from now on (sched.c, rtudp_w_rest): datagrams the RX
 * thread read since the last tick are work too */
static void rest_or_not(struct rtudp_worker *w, int64_t now)
{
    if (atomic_load_explicit(&w->rx.worked, memory_order_relaxed) &&
        atomic_exchange(&w->rx.worked, 0))
        rtudp_w_work(w, now);
    if (!w->resting && now - w->worked_ns >= RTUDP_W_REST_AFTER_NS)
        rtudp_w_rest(w, now);
}

void rtudp_w_tick(struct rtudp_worker *w, int64_t now)
{
    rest_or_not(w, now);
    w->next_tick = now + (w->resting ? RTUDP_W_REST_TICK_NS : RTUDP_W_HEARTBEAT_NS);
    struct rtudp_worker_slot *me = w->me;
    store_relaxed(&me->heartbeat_ns, now);
    store_relaxed(&me->spin_margin_ns, w->pacer.spin.margin_ns);
    store_relaxed(&me->spin_ns, w->pacer.spin.total_ns);
    store_relaxed(&me->spin_other_ns, w->pacer.spin_other_ns);
    store_relaxed(&me->demotions, (uint32_t)w->pacer.demotions);
    store_relaxed(&me->demote_preempted, (uint32_t)w->pacer.demote_preempted);
    store_relaxed(&me->sleep_cpu_ns, w->pacer.spin.sleep_cpu_ns);
    store_relaxed(&me->bridge_ns, w->pacer.bridge_ns);
    store_relaxed(&me->capped_sleeps,
                  w->pacer.capped_sleeps + atomic_load_explicit(&w->rx.capped_sleeps, memory_order_relaxed));
    store_relaxed(&me->rx_turns, w->pacer.rx_turns);
    store_relaxed(&me->rx_coalesced, atomic_load_explicit(&w->rx.coalesced, memory_order_relaxed) +
                                         atomic_load_explicit(&w->rx.gathered, memory_order_relaxed));
    rtudp_w_idle_poller_check(w);
    store_relaxed(&me->idle_poller_cpu_ns, (uint64_t)rtudp_idlepoller_cpu_ns(&w->pacer.poller));
    store_relaxed(&me->cpu_contended, (uint32_t)w->pacer.share.contended_looks);
    store_relaxed(&me->host_pauses, w->pacer.hostpause.pauses);
    store_relaxed(&me->host_pause_ns, w->pacer.hostpause.pause_ns);
    store_relaxed(&me->host_pause_max_ns, w->pacer.hostpause.max_ns);
    store_relaxed(&me->warmups, w->pacer.warmup.count);
    store_relaxed(&me->warmup_lead_ns, w->pacer.warmup.lead_ns);
    /* a switch since this baseline makes a long spin step a task's (hostpause.h) */
    rtudp_hostpause_baseline(&w->pacer.hostpause, rtudp_hostpause_switches(NULL));
    /* the supervisor's process, not its heartbeat: a live supervisor that is slow to
     * beat (a VM that just booted, a SIGSTOP, a long GC) must not lose its workers */
    if (supervisor_gone(w)) {
        fprintf(stderr, "rtudp-worker %u: the supervisor (pid %d) has exited; exiting\n",
                w->id, (int)w->sup_pid);
        w->exiting = 1;
        return;
    }
    /* a slice of the channels a tick, so that the sweep costs a worker of thousands of
     * channels little, and each channel is looked at at least once a second */
    uint32_t n = w->n_active, slice = w->resting ? n : n / SWEEP_TICKS + 1;
    if (slice < SWEEP_MIN)
        slice = SWEEP_MIN;
    for (uint32_t k = 0; k < slice && k < n; k++) {
        if (w->sweep_next >= n)
            w->sweep_next = 0;
        struct rtudp_chan *c = w->active[w->sweep_next++];
        if (rtudp_tap_on(&c->tap)) /* a tap killed with SIGKILL: stop mirroring for it */
            rtudp_tap_reap(c->block);
        if (!c->sends || c->tx_broken)
            continue;
        /* a producer that died between claim and commit must not wedge the ring */
        if (rtudp_mpsc_unblock(&c->tx, c->cursor, RTUDP_W_UNBLOCK_NS) < 0)
            rtudp_tx_fault(c, "claim corrupt", c->cursor);
        /* the ready set's safety net: a commit whose producer did not mark it (one that
         * stalled between its mark's two words, or wired to no ready set) is read now */
        if (rtudp_mpsc_readable_at(&c->tx, c->cursor))
            rtudp_ready_mark(w->ready, c->slot);
        /* (a stamp that came after its packet timed out waits in the error queue until
         * the channel's next read of it, which drops it: no system call a tick here) */
    }
}

