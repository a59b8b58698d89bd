/*
 * handoff.c - a channel moved between workers by the workers themselves.
 *
 * A move through the supervisor leaves the channel unserved from its old worker's
 * REMOVE until the supervisor has read that reply and the new worker has prepared
 * the channel after its ADD: milliseconds a channel, more while the supervisor's
 * process is busy.  A handoff takes the supervisor out of that gap.  The new worker
 * prepares the channel first (RTUDP_CMD_TAKE_OVER, the conductor's work, while the old
 * worker still serves it) and keeps it here, awaited.  The old worker, at its REMOVE,
 * finds the handoff in the channel block: it lets go, routes the producers to the new
 * worker, marks the block released and rings the new worker's bell
 * (rtudp_w_let_go).  The new worker, woken, serves every awaited channel whose block
 * says released (rtudp_w_take_over).  The gap is one wake-up.
 *
 * TX thread only.  The awaited channels are few (a move's slice), so they are kept
 * in an array and looked at when the bell rang.
 */
#include <stdio.h>
#include <string.h>

#include "segment.h"
#include "worker.h"

int rtudp_w_await_handoff(struct rtudp_worker *w, struct rtudp_chan *c, char *msg,
                          size_t msglen)
{
    if (w->n_awaiting >= RTUDP_W_AWAIT_MAX) {
        snprintf(msg, msglen, "%u channels already wait to be taken over here",
                 RTUDP_W_AWAIT_MAX);
        return RTUDP_EINVAL;
    }
    w->awaiting[w->n_awaiting++] = c;
    rtudp_slotbits_add(w->adding, c->slot); /* a second ADD of the slot is refused */
    return RTUDP_OK;
}

int rtudp_w_handoff_ready(const struct rtudp_worker *w)
{
    for (uint32_t i = 0; i < w->n_awaiting; i++)
        if (rtudp_channel_released(w->awaiting[i]->block))
            return 1;
    return 0;
}

/* awaited channel i out of the array (order does not matter: each is served on its own) */
static struct rtudp_chan *unawait(struct rtudp_worker *w, uint32_t i)
{
    struct rtudp_chan *c = w->awaiting[i];
    w->awaiting[i] = w->awaiting[--w->n_awaiting];
    rtudp_slotbits_remove(w->adding, c->slot);
    return c;
}

void rtudp_w_take_over(struct rtudp_worker *w)
{
    for (uint32_t i = 0; i < w->n_awaiting;) {
        struct rtudp_chan *c = w->awaiting[i];
        if (!rtudp_channel_released(c->block)) {
            i++;
            continue;
        }
        unawait(w, i);
        char msg[sizeof(((struct rtudp_reply *)0)->msg)];
        msg[0] = '\0';
        if (rtudp_w_serve_released(w, c, msg, sizeof msg) != RTUDP_OK) {
            /* its REMOVE was answered already: the log says it, and the worker's slot
             * shows one channel fewer than the pool's table gives it */
            fprintf(stderr, "rtudp-worker %u: channel '%s' (slot %u) not taken over: %s\n",
                    w->id, c->name, c->slot, msg);
            rtudp_w_release_later(w, c);
        }
    }
    rtudp_chan_forget_timers(w); /* (a channel that failed to activate left its mark) */
}

int rtudp_w_serve_released(struct rtudp_worker *w, struct rtudp_chan *c, char *msg,
                           size_t msglen)
{
    store_release(&c->block->handoff, (uint32_t)RTUDP_HANDOFF_NONE);
    int rc = rtudp_chan_activate(w, c, msg, msglen);
    if (rc == RTUDP_OK)
        rtudp_chan_allow_direct(c); /* held while the channel moved */
    return rc;
}

int rtudp_w_drop_awaited(struct rtudp_worker *w, uint32_t slot)
{
    for (uint32_t i = 0; i < w->n_awaiting; i++)
        if (w->awaiting[i]->slot == slot) {
            rtudp_w_release_later(w, unawait(w, i));
            return 1;
        }
    return 0;
}

void rtudp_w_let_go(struct rtudp_worker *w, struct rtudp_chan *c)
{
    if (!c->block)
        return;
    uint32_t n = load_relaxed(&w->ctl->pool.n_workers);
    if (n > RTUDP_MAX_WORKERS)
        n = RTUDP_MAX_WORKERS;
    int32_t to = rtudp_channel_hand_over(c->block, n);
    if (to >= 0 && (uint32_t)to != w->id)
        rtudp_bell_ring(&w->ctl->workers[to].bell);
}

void rtudp_w_free_awaited(struct rtudp_worker *w)
{
    while (w->n_awaiting)
        rtudp_chan_release(unawait(w, 0));
}
