/*
 * worker.h - the rtudp-worker process: its state and how its files fit together.
 *
 *   main.c      arguments, process setup, mapping the pool, start and exit
 *   txloop.c    the TX thread (the main one): TX rings -> timer queue, park / spin to
 *               the next deadline, send what is due; commands and tick between turns
 *   control.c   the command socket (ADD/REMOVE/STOP) and the 100 ms liveness tick (1 s
 *               while the worker rests: sched.c)
 *   conductor.c the conductor thread: the heavy half of an ADD (segment, sockets,
 *               memory) and a removed channel's memory, beside the TX thread
 *   channels.c  the channel table: add a channel (segment, ring views, socket setup,
 *               its kind, timer-queue room) / drop one
 *   ../proto/   the channel kinds' hooks (proto.h): udp.c, ...
 *   txsend.c    sending what is due: sendmmsg / GSO per channel, a kind's datagram
 *               now, TX stamps, journal, ring space freed once a packet has left
 *   rxloop.c    the RX thread: epoll, recvmmsg -> RX broadcast ring
 *   asyncwake.c event loops waiting on a channel: their eventfds, written only while
 *               they wait (../async_wait.h)
 *   txstamp.c   per channel: sent packets waiting for their kernel TX stamp
 *   histbatch.c a send batch's lateness values, recorded into the histograms after
 *               its last send
 *   impair_apply.c  a channel's impairment applied: records queued lost, duplicated,
 *               corrupted, held (TX); a kind's sends and datagrams received lost,
 *               duplicated, corrupted, or held in the channel's hold queues (holdq.c)
 *   tap.c       per channel: copies of what it sends and receives for taps, while attached
 *   txjournal.c per channel: the records in a send, for a successor if we die in it
 *   netio.c     socket I/O: setup, sendmmsg/GSO, recvmmsg, TX stamps, addresses
 *   sched.c     process-wide scheduling: death signal, memory locking, CPU, priority,
 *               the CPU's idle states
 *   pacer.c     the timing policy (pacer.h): park, spin or sleep, the RT cap; its
 *               mechanisms switched off by name for measuring (mechanisms.h)
 *   pacer_rt.c  the TX thread's real-time policy, left and taken back past the cap
 *   spin.c      the adaptive spin margin and its CPU budget
 *   timerq.c, inflight.c   the timer queue, the in-flight records of a TX ring
 *   holdq.c     a bounded queue of datagram copies, each released at its due time
 *
 * Calls between these files go one way, down this list (a file calls only files
 * below it): main -> txloop -> control -> conductor -> channels -> the kinds ->
 * txsend, rxloop -> txstamp, histbatch, txjournal, asyncwake, tap, netio, sched,
 * pacer, spin, timerq, inflight, holdq.  The kinds' hooks are
 * called through struct rtudp_proto (by channels, txloop and rxloop); a kind calls
 * back only into what is below it (rtudp_tx_send_now, rtudp_rx_cap_for,
 * rtudp_to_sockaddr).  So the channel table (w->chans / w->active) is written only by
 * channels.c, and the loop reaches it for adds and removes only through the commands.
 *
 * Threads: the TX thread owns the channel table (add, remove, everything TX).  The
 * RX thread learns of a channel only through rtudp_rx_add / rtudp_rx_remove, which
 * hand it over under a lock and return once the RX thread has taken or dropped it,
 * so a channel is freed only when the RX thread no longer uses it.  The conductor
 * thread prepares a channel before the TX thread puts it in the table, and frees one
 * after the TX thread took it out (conductor.h): it never touches a channel in the
 * table.  Each counter in shared memory has one writer thread (TX counters: TX thread;
 * RX: RX thread).
 */
#ifndef RTUDP_WORKER_H
#define RTUDP_WORKER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "impair.h"
#include "asyncwake.h"
#include "chanheap.h"
#include "conductor.h"
#include "slotbits.h"
#include "histbatch.h"
#include "holdq.h"
#include "inflight.h"
#include "netio.h"
#include "proto/proto.h"
#include "ring.h"
#include "rtudp_shm.h"
#include "rx_publish.h"
#include "pacer.h"
#include "tap.h"
#include "timerq.h"
#include "txstamp.h"

#include "shm_access.h" /* counters: one writer thread each (bump) */

#define RTUDP_W_HEARTBEAT_NS 100000000LL   /* write ours, check the supervisor, every 100 ms */
/* a worker with nothing to do this long rests (sched.c, rtudp_w_rest): no idle polling,
 * and its tick this far apart */
#define RTUDP_W_REST_AFTER_NS 2000000000LL
#define RTUDP_W_REST_TICK_NS 1000000000LL
#define RTUDP_W_STAMP_WAIT_NS 5000000LL    /* no TX stamp after 5 ms: use the send time */
#define RTUDP_W_UNBLOCK_NS 1000000000LL    /* a producer's open claim older than this is dead */
#define RTUDP_W_AWAIT_MAX 256u           /* channels awaited from other workers at once */

/* What the RX thread needs of a channel.  Set by the TX thread before the handoff,
 * then written only by the RX thread until it hands the channel back. */
struct rtudp_rx_chan {
    int fd;
    struct rtudp_channel_block *block;
    struct rtudp_bcast ring;
    uint32_t cap;      /* payload bytes kept per datagram */
    int gro;           /* the socket may coalesce datagrams (netio caps.gro) */
    int reader_holds;  /* a reader holds the socket (rx_publish.h): out of epoll */
    int64_t reader_check_ns; /* then: when to look at the token again */
    uint64_t reader_seen;    /* rx_packets at the last look */
    int may_gather;    /* its datagrams may wait RTUDP_RX_GATHER_NS in the socket, and its
                        * kind's timer as long (set by its kind before the RX thread
                        * sees it: rxloop.c, rx_gather) */
    int pending;       /* may have more datagrams queued (edge-triggered epoll) */
    int in_pend;       /* in the RX side's pending list (rxloop.c, set_pending) */
    struct rtudp_chanheap_node timer_node; /* in rx->timers: its next timer, held
                                            * datagram or reader check */
    int listed;        /* in the RX thread's table */
    int64_t timer_ns;  /* the kind's rx_timer is due then (RTUDP_PROTO_NEVER: not) */
    struct rtudp_impair impair; /* the RX side's impairment (zeroed: none seen yet) */
    struct rtudp_holdq hold;    /* datagrams received that the impairment holds */
    struct rtudp_async_fds waiters; /* event loops waiting for RX data (asyncwake.h) */
    struct rtudp_tap tap; /* the RX tap ring (tap.h) */
};

struct rtudp_chan {
    uint32_t slot;
    char name[RTUDP_NAME_MAX + 8];
    int fd;                         /* the channel socket: receives (RX thread) */
    int tx_fd;                      /* what the TX thread sends on and reads TX stamps of:
                                     * fd, or a send-only socket of the same address */
    socklen_t dst_len;              /* 0: connected (or nowhere to send); beside tx_fd,
                                     * since every send reads it and most not dst */
    void *base;
    uint64_t size;
    struct rtudp_channel_block *block;
    struct rtudp_net_caps caps;
    /* the channel kind: its hooks, its area in the segment, its private state */
    const struct rtudp_proto *proto;
    void *area;
    uint64_t area_bytes;
    void *state;
    int kind_open;                  /* open succeeded: close is due */
    int standby;                    /* a standby copy (proto.h): the kind's timer only, not
                                     * spun for; no RX, no TX ring, no socket setup */
    int adopt;                      /* prepared while another worker served it: its
                                     * sockets adopted as they are (rtudp_net_adopt) */
    int64_t tx_timer_ns;            /* proto->tx_timer is due then (RTUDP_PROTO_NEVER: not) */
    int timer_may_lead;             /* the kind's timer may run with a group of deadlines,
                                     * up to tx_coalesce_us early (its timing is a schedule
                                     * the clock it is given may lead, as a timed send's) */
    /* its places in the TX thread's timer heaps (chantimes.c keeps them in step) */
    struct rtudp_chanheap_node timer_node;   /* w->timers: the kind's timer, held sends */
    struct rtudp_chanheap_node standby_node; /* w->standby_timers: a standby's timer */
    struct rtudp_chanheap_node stamp_node;   /* w->stamp_reads: its TX stamps' read-by */
    uint32_t active_at;             /* its index in w->active */
    uint64_t tq_reserved;           /* its share of w->tq_need */
    uint32_t tx_group;              /* the group of deadlines it last sent in (w->tx_group) */
    /* TX side (TX thread only) */
    int sends;                      /* direction SEND or BOTH */
    int tx_broken;                  /* the TX ring failed validation: no longer read */
    int gso_ok;                     /* same-size packets may leave as one GSO send */
    struct rtudp_mpsc tx;
    uint64_t cursor;                /* next ring position to read; starts at head */
    struct rtudp_inflight inflight;
    struct rtudp_txstamps stamps;
    struct rtudp_tap tap;           /* the TX tap ring (tap.h) */
    int64_t stamps_read_ns;         /* when the TX stamps were last read (txloop.c) */
    uint32_t stamp_room;            /* TX stamps its socket's error queue keeps for sure */
    struct rtudp_impair impair;     /* the TX side's impairment (zeroed: none seen yet) */
    struct rtudp_holdq tx_hold;     /* a kind's own sends that the impairment holds */
    struct sockaddr_storage dst;    /* where to send when the socket is not connected */
    /* RX side */
    int recvs;                      /* direction RECV or BOTH */
    struct rtudp_rx_chan rx;
    /* event loops waiting for TX ring room; registrations answered here (TX thread) */
    struct rtudp_async_fds tx_waiters;
};

/* Who does the RX work (rtudp_rx.own): the RX thread (in a turn, or idle: waiting on
 * the sockets); the RX thread, asked for by the TX thread; or the TX thread, while it
 * spins between close deadlines anyway and the RX thread sleeps (rxloop.c:
 * rtudp_rx_take, rtudp_rx_poll, rtudp_rx_give) */
enum { RX_OWN_RX = 0, RX_OWN_WANTED = 1, RX_OWN_TX = 2, RX_OWN_IDLE = 3 };

/* The RX thread and its handoff (rxloop.c). */
struct rtudp_rx {
    pthread_t thread;
    int running;
    int epfd;
    int efd;                        /* eventfd: a request is waiting */
    int urgent_epfd;                /* the eventfd and the channels that may not gather:
                                     * what ends a gather (rxloop.c, rx_gather) */
    int turn_urgent;                /* this turn read a channel that may not gather */
    int gathering;                  /* the last turn was followed by a gather */
    int64_t woke_ns, prev_woke_ns;  /* when the last two waits of the RX thread ended */
    atomic_int stop;
    atomic_uint own;                /* RX_OWN_* */
    atomic_int rescan;              /* events a wait took after the TX thread took over:
                                     * lost[0..rescan) says whose (rxloop.c) */
    uint64_t lost[64];              /* their epoll keys (rxloop.c, event_key) */
    int rt;                         /* the RX thread is real-time: its CPU time is capped */
    int64_t cap_window_start, cap_window_cpu, cap_read_at;  /* rx_keep_under_cap */
    int cap_ahead;                  /* ... ahead of the pace to the cap: a sleep after each
                                     * busy turn (spin.h, rtudp_cap_ahead) */
    atomic_ullong capped_sleeps;    /* RX thread's sleeps past the cap (added to the TX's) */
    int64_t coalesce_ns;            /* --rx-coalesce-us: how long datagrams may gather */
    uint32_t off;                   /* mechanisms switched off (mechanisms.h) */
    atomic_ullong coalesced;        /* waits for them to gather (rx_coalesce) */
    atomic_ullong gathered;         /* waits while only channels that may gather read
                                     * (rx_gather); published with coalesced */
    atomic_uint readers_hold;       /* channels whose socket a reader holds (rx_publish.h) */
    /* resting (sched.c, rtudp_w_rest): the TX thread learns of datagrams from these */
    atomic_int worked;              /* 1: a turn read datagrams since the TX thread looked */
    atomic_int rest;                /* 1: the worker rests: the next datagram rings `bell` */
    struct rtudp_doorbell *bell;    /* the TX thread's (set before `rest` is first set) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rtudp_rx_req *req;       /* at most one, guarded by mu */
    struct rtudp_rx_chan *chans[RTUDP_MAX_CHANNELS]; /* by table slot; RX thread only */
    uint32_t n_chans;               /* of them, not NULL */
    /* the RX work's owner's: channels that may have data (pending), and channels by
     * their next timer, so a turn looks only at those with work */
    struct rtudp_rx_chan *pend[RTUDP_MAX_CHANNELS];
    uint32_t n_pend;
    struct rtudp_chanheap timers;
    uint8_t *buf;                   /* RX thread's receive buffers */
    uint8_t *seg_buf;               /* where a coalesced (GRO) receive is split */
};

struct rtudp_worker {
    const char *pool_name;
    uint32_t id;
    int cmd_fd;
    uint32_t commands_seen;         /* me->commands_posted when the socket was last drained */
    uint32_t async_seen;            /* me->async_posted when registrations were last answered */
    struct rtudp_control *ctl;
    uint64_t ctl_size;
    struct rtudp_worker_slot *me;
    struct rtudp_chan *chans[RTUDP_MAX_CHANNELS];  /* by slot; TX thread only */
    struct rtudp_chan *active[RTUDP_MAX_CHANNELS]; /* the non-NULL ones, compact */
    uint32_t n_active;
    uint32_t sweep_next;            /* where the tick's sweep of active[] goes on (control.c) */
    uint32_t n_receiving;           /* of them, those that receive (RX thread's) */
    uint32_t n_serving;             /* of them, those not standby */
    uint32_t n_prompt;              /* of those, the ones whose wake-ups must come at once:
                                     * they send, or receive without gathering (the idle
                                     * poller runs for them: channels.c, count_channel) */
    /* the channels that producers marked since the TX thread last looked: the only
     * TX rings it reads (readyset.h; the tick's sweep is the safety net) */
    struct rtudp_ready_set *ready;
    /* channels by the time they next need the TX thread (chantimes.c) */
    struct rtudp_chanheap timers;         /* kinds' timers and held sends (spun for) */
    struct rtudp_chanheap standby_timers; /* standbys' timers (a plain timeout) */
    struct rtudp_chanheap stamp_reads;    /* when their waiting TX stamps are read by */
    uint64_t tq_need;               /* timers the sending channels may queue at most */
    struct rtudp_timerq tq;
    struct rtudp_histbatch late_batch; /* a send batch's lateness values (txloop.c) */
    /* channels let go of whose timers are still in tq: dropped in one pass for all of
     * them once the commands read together are done (rtudp_chan_forget_timers) */
    rtudp_slotbits tq_gone;
    uint32_t tq_gone_n;
    struct rtudp_pacer pacer;       /* the timing policy's state (pacer.h) */
    int64_t backoff_until;          /* EAGAIN: no sends before this */
    /* what a record taken next came after (rtudp_tx_in_time_by): the last clock at
     * which the TX thread, running, found no record waiting, or RTUDP_TX_LOOK_PARKED
     * after a park on the bell for a deadline at parked_to_ns, which a producer first
     * rang at parked_rung_ns (0: none did) */
    int64_t look_ns;
    int64_t parked_to_ns;
    int64_t parked_rung_ns;
    uint32_t tx_group;              /* the deadlines sent together now: one a channel, so a
                                       stream's own packets keep their spacing (txloop.c) */
    int64_t next_tick;              /* heartbeat and liveness checks */
    int64_t worked_ns;              /* when it last had work: a deadline, a record, a
                                     * command or a datagram (rtudp_w_work) */
    int resting;                    /* it rests: no idle polling, a longer tick (sched.c) */
    int exiting;
    /* the conductor thread (conductor.h), and a command read while ADDs it prepares are
     * still to be answered: it waits for them, so that replies keep the commands' order */
    struct rtudp_conductor conductor;
    rtudp_slotbits adding;          /* slots of ADDs given to it, not yet taken, and of
                                     * channels awaited from another worker */
    /* TAKE_OVERs prepared and answered, to serve once released (handoff.c) */
    struct rtudp_chan *awaiting[RTUDP_W_AWAIT_MAX];
    uint32_t n_awaiting;
    struct rtudp_held_cmd {
        int pending;
        struct rtudp_cmd cmd;
        ssize_t len;
        int msg_flags;
        int fds[4];
        int nfd;
    } held;
    int32_t sup_pid;                /* the supervisor (the pool block's supervisor_pid) */
    int sup_pidfd;                  /* a pidfd of it, readable once it exited; -1: none */
    struct rtudp_rx rx;
};

/* sched.c: each prints its own diagnostics; -1 = fatal (exit 2) */
int rtudp_w_die_with_parent(void);
void rtudp_w_lock_memory(void);
/* before any thread: the file table made as large as the worker's files may come */
void rtudp_w_reserve_files(void);
/* once set up: memory mapped later is locked as it faults in, not faulted in at once */
void rtudp_w_lock_on_fault(void);
/* fault in and lock [p, p + len) now (a channel's segment, mapped after the setup) */
void rtudp_w_make_resident(void *p, size_t len);
int rtudp_w_pin_cpu(long cpu);
int rtudp_w_set_priority(long prio);
/* hold (want 1) or drop (0) the CPU idle-latency request, if --idle-poll allows */
void rtudp_w_idle_poll(struct rtudp_worker *w, int want);
/* once a heartbeat: reaps an idle poller that exited by itself (idlepoller.h) */
void rtudp_w_idle_poller_check(struct rtudp_worker *w);
/* TX thread, at a tick RTUDP_W_REST_AFTER_NS after its last work: rest (no idle
 * polling; control.c's tick stretches), unless the RX thread read datagrams meanwhile */
void rtudp_w_rest(struct rtudp_worker *w, int64_t now);
/* TX thread, at its first work since it rested: idle polling again, the tick at its pace */
void rtudp_w_wake(struct rtudp_worker *w, int64_t now);
/* TX thread: work at `now` (a deadline waits, a record came, a command, a datagram) */
static inline void rtudp_w_work(struct rtudp_worker *w, int64_t now)
{
    w->worked_ns = now;
    if (w->resting)
        rtudp_w_wake(w, now);
}

/* txloop.c: the TX thread's loop */
int rtudp_tx_init(struct rtudp_worker *w);
void rtudp_tx_free(struct rtudp_worker *w);
void rtudp_tx_run(struct rtudp_worker *w);

/* control.c: the command socket and liveness, called from the loop */
extern volatile sig_atomic_t rtudp_w_signalled; /* SIGTERM/SIGINT/SIGHUP: exit */
void rtudp_w_poll_commands(struct rtudp_worker *w);
int rtudp_w_cmd_ready(const struct rtudp_worker *w);
/* the conductor prepared an ADD's channel: activate it and reply (then answer a command
 * that waited for it, and read those behind it) */
int rtudp_w_prepared_ready(const struct rtudp_worker *w);
void rtudp_w_take_prepared(struct rtudp_worker *w);
void rtudp_w_tick(struct rtudp_worker *w, int64_t now);
/* a REMOVEd channel's memory, freed by the conductor */
void rtudp_w_release_later(struct rtudp_worker *w, struct rtudp_chan *c);

/* handoff.c: a channel moved by the workers themselves (RTUDP_CMD_TAKE_OVER).  The
 * worker taking over keeps a prepared channel awaited (RTUDP_EINVAL and msg when full)
 * and serves it once its block says released: handoff_ready at a wake-up, take_over;
 * a REMOVE before then drops it (drop_awaited: 1 if it was awaited here).  The worker
 * letting go, after its REMOVE detached the channel: let_go.  free_awaited at exit. */
int rtudp_w_await_handoff(struct rtudp_worker *w, struct rtudp_chan *c, char *msg,
                          size_t msglen);
int rtudp_w_handoff_ready(const struct rtudp_worker *w);
/* a channel released to this worker served from now on (its direct sends let go) */
int rtudp_w_serve_released(struct rtudp_worker *w, struct rtudp_chan *c, char *msg,
                           size_t msglen);
void rtudp_w_take_over(struct rtudp_worker *w);
int rtudp_w_drop_awaited(struct rtudp_worker *w, uint32_t slot);
void rtudp_w_let_go(struct rtudp_worker *w, struct rtudp_chan *c);
void rtudp_w_free_awaited(struct rtudp_worker *w);

/* channels.c: a channel is added in two halves.  rtudp_chan_prepare (any thread: the
 * conductor, conductor.h) maps the segment `name` of pool `pool_name`, checks it, sets
 * the sockets up and allocates what the channel needs (`how`: RTUDP_PREP_*, or 0),
 * taking fd and tx_fd (-1: send on
 * fd) over: on failure they are closed too.  rtudp_chan_activate (TX thread) then gives
 * it its timers, its kind and the RX thread, and puts it in the table at its slot (a
 * free one); on failure c is left to rtudp_chan_release.  msg gets what was set up, or
 * why not (activate appends to what prepare wrote). */
#define RTUDP_PREP_STANDBY 1u /* a standby copy (ADD_STANDBY) */
#define RTUDP_PREP_ADOPT 2u   /* its sockets are another worker's still (TAKE_OVER):
                               * rtudp_net_adopt, not rtudp_net_setup */
int rtudp_chan_prepare(const char *pool_name, uint32_t slot, const char *name, int fd,
                       int tx_fd, unsigned how, struct rtudp_chan **out, char *msg,
                       size_t msglen);
/* clients may send on the channel's socket themselves again, if its sockets allow
 * (a move held them off while no worker served it) */
void rtudp_chan_allow_direct(struct rtudp_chan *c);
int rtudp_chan_activate(struct rtudp_worker *w, struct rtudp_chan *c, char *msg, size_t msglen);
/* take c out of the table and let go of it (TX thread): its unsent records stay in its
 * TX ring, its sockets are closed; what is left is memory for rtudp_chan_release */
void rtudp_chan_drop(struct rtudp_worker *w, struct rtudp_chan *c);
/* free a prepared or dropped channel's memory (any thread) */
void rtudp_chan_release(struct rtudp_chan *c);
/* the timers of the channels dropped since the last call, out of the timer queue: the
 * caller of rtudp_chan_drop calls it before the TX loop goes on */
void rtudp_chan_forget_timers(struct rtudp_worker *w);

/* chantimes.c: a channel's places in the timer heaps, from its kind's timer, its held
 * sends and its waiting TX stamps: called whenever the TX thread changed one of them */
void rtudp_chan_rekey(struct rtudp_worker *w, struct rtudp_chan *c);
/* room in each heap for one more channel: RTUDP_OK or RTUDP_ESYS */
int rtudp_chan_times_reserve(struct rtudp_worker *w, uint32_t n);
/* c out of every heap (it is being dropped) */
void rtudp_chan_times_clear(struct rtudp_worker *w, struct rtudp_chan *c);
/* a kind's RX hook queueing into c's own TX ring: *view, a producer's view of it that
 * marks c in the worker's ready set and rings its bell, as a client's does */
void rtudp_chan_tx_producer(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_mpsc *view);
/* when c's waiting TX stamps are to be read at the latest (INT64_MAX: none wait) */
int64_t rtudp_chan_stamps_read_by(const struct rtudp_chan *c);
#define RTUDP_W_STAMP_HOLD_NS 1000000LL /* TX stamps wait at most this long to be read */

/* txsend.c: sending (the loop's, and a kind's from its hooks) */
#define RTUDP_W_POP_MAX 256 /* due timers sent in one go at most */
/* send the due timers due[idx[0..n)] of channel c (n <= RTUDP_W_POP_MAX, in deadline
 * order); a full socket buffer pushes the rest back and sets w->backoff_until */
/* ask for the memory sending t's packet on c touches (cache lines, and their pages'
 * TLB entries) ahead of the send */
void rtudp_tx_prefetch(const struct rtudp_chan *c, const struct rtudp_timer *t);
void rtudp_tx_send_group(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *due,
                         const uint32_t *idx, uint32_t n, int64_t now);
/* send one datagram now on c (a kind's tx_timer), asked for `asked_ns`: impaired,
 * counted and timed (lateness) like a TX-ring packet.  0 sent (or lost to the
 * impairment), else -1 with errno (counted in tx_errors unless EAGAIN) */
int rtudp_tx_send_now(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns);
/* the same to dst (a kind that serves many peers on one socket: udt) */
int rtudp_tx_send_to(struct rtudp_chan *c, const void *data, uint32_t len, int64_t asked_ns,
                     const struct sockaddr *dst, socklen_t dst_len);
/* TX thread: send what c->tx_hold holds that is due at `now` (a kind's sends the
 * impairment held); stops early when the socket is full */
void rtudp_tx_send_held(struct rtudp_worker *w, struct rtudp_chan *c, int64_t now);
/* read c's TX stamps that came (and expire those that will not) */
void rtudp_tx_read_stamps(struct rtudp_chan *c, int64_t now);
/* free c's TX ring up to the first packet not yet sent */
void rtudp_tx_release(struct rtudp_chan *c);

/* impair_apply.c: the channel's impairment (impair.h), if it has one now */
/* TX thread: queue t as the impairment says (unimpaired: as it is); a lost record is
 * freed as if sent, the caller releases the ring.  A held copy is held from `now` if t
 * is already due (its key may be a past deadline).  RTUDP_OK or the timer queue's code */
int rtudp_impair_tx_queue(struct rtudp_worker *w, struct rtudp_chan *c, struct rtudp_timer *t,
                          int64_t now);
/* TX thread, a kind's own send of *data to dst (dst_len 0: the connected peer), asked
 * for asked_ns: how many times to send it now (0: lost, or held: the copies the
 * delay, jitter, reorder or rate hold are copied into c->tx_hold, or counted dropped
 * when it is full); a corrupted datagram's *data becomes a copy with a bit flipped.
 * now: the time (0: read the clock, only when the channel is impaired) */
uint32_t rtudp_impair_tx_now(struct rtudp_chan *c, const void **data, uint32_t len,
                             int64_t asked_ns, const struct sockaddr *dst, socklen_t dst_len,
                             int64_t now);
/* What a kind's held send carries besides its bytes (c->tx_hold's meta) */
struct rtudp_held_send {
    socklen_t dst_len;              /* 0: the connected peer */
    uint32_t pad;
    struct sockaddr_storage dst;    /* only dst_len bytes are held */
};
#define RTUDP_HELD_SEND_META(dst_len) \
    ((uint32_t)(offsetof(struct rtudp_held_send, dst) + (dst_len)))
/* RX thread, once rtudp_impair_refresh said the channel's receives are impaired:
 * pkts[0..n) as the impairment says into out[0..max) (lost ones left out, duplicated
 * ones twice, corrupted in place, held ones copied into c->hold, or counted dropped
 * when it is full); how many go on now */
int rtudp_impair_rx(struct rtudp_rx_chan *c, struct rtudp_rx_pkt *pkts, int n,
                    struct rtudp_rx_pkt *out, int max, int64_t now);
/* channels.c, at a channel's add: its holds, sized for the impairment published then
 * (docs/impairment.md), none for a side it holds nothing on (made at the first
 * datagram held); RTUDP_OK or RTUDP_EINVAL (no memory) */
int rtudp_impair_holds_init(struct rtudp_chan *c);
void rtudp_impair_holds_free(struct rtudp_chan *c);

/* channels.c: answer the async waiters registered on every channel (asyncwake.h) */
void rtudp_chan_answer_waiters(struct rtudp_worker *w);

/* rxloop.c */
/* (--rx-coalesce-us, its default and range: tunables.h) */
/* start the RX thread; coalesce_ns: how long datagrams coming fast may gather (0: never) */
int rtudp_rx_start(struct rtudp_rx *rx, int64_t coalesce_ns, uint32_t off);
void rtudp_rx_stop(struct rtudp_rx *rx);
int rtudp_rx_add(struct rtudp_rx *rx, struct rtudp_rx_chan *c);
void rtudp_rx_remove(struct rtudp_rx *rx, struct rtudp_rx_chan *c);
/* TX thread: ask for the RX work; 1 once it has it (the RX thread sleeps meanwhile) */
int rtudp_rx_take(struct rtudp_rx *rx);
/* TX thread: whether it has the RX work now */
int rtudp_rx_held(struct rtudp_rx *rx);
/* TX thread, while it has the RX work: one turn without waiting */
int rtudp_rx_poll(struct rtudp_rx *rx); /* the receives it read */
/* both threads' coalescing rule: 1 while the next RX turn waits, because the last one
 * read two or more (last_got) only since_ns ago, under coalesce_ns (rxloop.c,
 * rx_coalesce; txloop.c, rx_turn_here) */
int rtudp_rx_turn_waits(int last_got, int64_t since_ns, int64_t coalesce_ns);
/* How much later than its time a standby's timer may run, to run at the wake-up of a
 * deadline of this worker's own (txloop.c, decide): a standby's step-in is that much
 * later at most, and only where the serving worker missed a cycle */
#define RTUDP_STANDBY_SLACK_NS 100000LL

/* How long channels that may gather (rtudp_rx_chan.may_gather) let datagrams wait in
 * their sockets at most, and the rule: 1 when the RX thread gathers after a turn that
 * read `got` receives, `urgent` of them on channels that may not wait, and either
 * followed a gather (`gathering`) or woke only `since_ns` after its wake before; with
 * gathering allowed (`coalesce_ns` > 0) */
#define RTUDP_RX_GATHER_NS 1000000LL
int rtudp_rx_gathers(int got, int urgent, int gathering, int64_t since_ns, int64_t coalesce_ns);
/* when a gathering channel's kind timer due at `at` runs: the next multiple of
 * RTUDP_RX_GATHER_NS (never times stay never) */
int64_t rtudp_rx_gather_grid(int64_t at);
/* TX thread: give the RX work back (before it sleeps) */
void rtudp_rx_give(struct rtudp_rx *rx);

#endif /* RTUDP_WORKER_H */
