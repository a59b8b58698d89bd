/*
 * rtudp-worker - the native worker process.
 *
 *   rtudp-worker --pool NAME --worker-id N --cmd-fd FD [--cpu N] [--idle NAME]
 *                [--TUNABLE VALUE ...]
 *
 * (the idle strategies, the tunables and their ranges: tunables.h; a tunable not given
 * takes the idle strategy's value, else its default)
 *
 * Started by the pool's supervisor (rtudp.workers), which hands it the command
 * socket (SOCK_SEQPACKET, fd FD) and, per channel, a bound UDP socket.  It sets
 * itself up (worker.h lists the files), maps /rtudp.<pool>, publishes the settings it
 * runs with in its worker slot, marks the slot RUNNING and serves channels until the
 * supervisor is gone (death signal, its process exiting: a pidfd checked every 100 ms,
 * or its command socket closing) or says STOP; a supervisor that is only slow to beat
 * keeps its workers.  Then it marks the slot DEAD and exits 0.  Bad arguments or a bad
 * pool: exit 2 with the reason on stderr.  It is built and installed inside the package
 * (rtudp/workers/rtudp-worker) so the supervisor finds it without PATH tricks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall(), clock_gettime() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rtudp_shm.h"
#include "segment.h"
#include "tunables.h"
#include "worker.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int usage(FILE *out)
{
    fprintf(out, "usage: rtudp-worker --pool NAME --worker-id N --cmd-fd FD [--cpu N]\n"
                 "                    [--idle NAME] [TUNABLES]\n"
                 "       rtudp-worker --version\n"
                 "idle strategies (tunables.h), --idle NAME:");
    uint32_t n;
    const struct rtudp_idle_strategy_desc *s = rtudp_idle_strategy_table(&n);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, " %s%s", s[i].name, i == 0 ? " (default)" : "");
    fprintf(out, "\ntunables (tunables.h), each --name VALUE in its range; one not given takes\n"
                 "the idle strategy's value, else its default:\n");
    const struct rtudp_tunable_desc *t = rtudp_tunable_table(&n);
    for (uint32_t i = 0; i < n; i++) {
        fputs("  --", out);
        for (const char *c = t[i].name; *c; c++)
            fputc(*c == '_' ? '-' : *c, out);
        fprintf(out, " %lld..%lld, default %lld", (long long)t[i].min, (long long)t[i].max,
                (long long)t[i].default_value);
        if (t[i].scale > 1)
            fprintf(out, " (1/%u of a unit)", (unsigned)t[i].scale);
        fputc('\n', out);
    }
    fputs("mechanisms, all on unless named in --off NAME[,NAME] (mechanisms.h):\n", out);
    const struct rtudp_mechanism_desc *m = rtudp_mechanism_table(&n);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "  %-16s %s\n", m[i].name, m[i].help);
    return out == stderr ? 2 : 0;
}

static int parse_range(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "rtudp-worker: %s must be an integer in %ld..%ld, got '%s'\n", opt, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_uint(const char *opt, const char *s, long max, long *out)
{
    return parse_range(opt, s, 0, max, out);
}

/* the tunable an option names ("--spin-budget": spin_budget), or -1 */
static int tunable_of(const char *opt)
{
    if (strncmp(opt, "--", 2) != 0)
        return -1;
    uint32_t n;
    const struct rtudp_tunable_desc *t = rtudp_tunable_table(&n);
    for (uint32_t i = 0; i < n; i++) {
        const char *a = opt + 2, *b = t[i].name;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return (int)i;
    }
    return -1;
}

/* the index of the idle strategy named `name`, or -1 */
static int strategy_of(const char *name)
{
    uint32_t n;
    const struct rtudp_idle_strategy_desc *s = rtudp_idle_strategy_table(&n);
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(name, s[i].name))
            return (int)i;
    return -1;
}

static int bad_strategy(const char *name)
{
    uint32_t n;
    const struct rtudp_idle_strategy_desc *s = rtudp_idle_strategy_table(&n);
    fprintf(stderr, "rtudp-worker: --idle must be one of");
    for (uint32_t i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", s[i].name);
    fprintf(stderr, "; got '%s'\n", name);
    return 2;
}

static void on_signal(int sig)
{
    (void)sig;
    rtudp_w_signalled = 1;
}

/* ------------------------------------------------------------------ main */

/* the pool's channel table (thousands of slots) is the supervisor's and its clients':
 * the worker never reads it, so its pages do not count in the worker's locked memory */
static void unlock_channel_table(struct rtudp_control *ctl)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)ctl->channels + page - 1) & ~(page - 1);
    uintptr_t to = (uintptr_t)(ctl->channels + RTUDP_MAX_CHANNELS) & ~(page - 1);
    if (to > from)
        munlock((void *)from, to - from);
}

static int map_pool(struct rtudp_worker *w)
{
    char path[8 + RTUDP_NAME_MAX + 1];
    snprintf(path, sizeof path, "/rtudp.%s", w->pool_name);
    int fd = shm_open(path, O_RDWR, 0);
    if (fd < 0) {
        fprintf(stderr, "rtudp-worker: pool '%s': cannot open %s: %s\n", w->pool_name, path,
                strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        fprintf(stderr, "rtudp-worker: pool '%s': %s is empty or unreadable\n", w->pool_name,
                path);
        close(fd);
        return -1;
    }
    w->ctl_size = (uint64_t)st.st_size;
    w->ctl = rtudp_map(fd, w->ctl_size, 1);
    close(fd);
    if (!w->ctl) {
        fprintf(stderr, "rtudp-worker: pool '%s': mmap %s: %s\n", w->pool_name, path,
                strerror(errno));
        return -1;
    }
    struct rtudp_check why = {0};
    if (rtudp_control_validate(w->ctl, w->ctl_size, &why) != RTUDP_OK) {
        fprintf(stderr, "rtudp-worker: pool '%s': %s: %s\n", w->pool_name, path, why.msg);
        return -1;
    }
    uint32_t n = w->ctl->pool.n_workers;
    if (w->id >= n) {
        fprintf(stderr, "rtudp-worker: pool '%s' has %u worker slots; --worker-id %u is not one\n",
                w->pool_name, n, w->id);
        return -1;
    }
    w->me = &w->ctl->workers[w->id];
    w->ready = &w->ctl->ready[w->id];
    unlock_channel_table(w->ctl);
    return 0;
}

/* Watch the supervisor the pool block names (rtudp_w_tick checks it): a pidfd, taken
 * while it is surely the process that spawned us.  -1: it is gone already. */
static int watch_supervisor(struct rtudp_worker *w)
{
    pid_t parent = getppid();
    int32_t pid = (int32_t)w->ctl->pool.supervisor_pid;
    w->sup_pid = pid;
    w->sup_pidfd = -1;
    if (pid <= 0) {
        fprintf(stderr, "rtudp-worker: pool '%s' names no supervisor (pid %d)\n", w->pool_name,
                (int)pid);
        return -1;
    }
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0); /* close-on-exec */
    if (fd < 0 && errno == ESRCH) {
        fprintf(stderr, "rtudp-worker: pool '%s': its supervisor (pid %d) is gone\n",
                w->pool_name, (int)pid);
        return -1;
    }
    if (fd < 0) {
        fprintf(stderr, "rtudp-worker: warning: pidfd_open(%d): %s; watching the supervisor "
                        "by its pid\n", (int)pid, strerror(errno));
        return 0;
    }
    /* the pid names our parent, the supervisor that spawned us, unless it died before
     * the pidfd was taken (and the pid went to another process): then we have another
     * parent now */
    if (parent == pid && getppid() != parent) {
        fprintf(stderr, "rtudp-worker: pool '%s': its supervisor (pid %d) is gone\n",
                w->pool_name, (int)pid);
        close(fd);
        return -1;
    }
    w->sup_pidfd = fd;
    return 0;
}

/* what the command line asks for (-1: not given; a tunable: RTUDP_TUNE_KEEP) */
struct options {
    const char *pool;
    long worker_id, cpu, cmd_fd;
    long idle;                      /* index in the idle strategy table */
    long tune[RTUDP_TUNE_COUNT];
    uint32_t off;                   /* --off: mechanisms switched off (mechanisms.h) */
};

/* the settings the worker runs with, for readers (fixed while it runs) */
static void publish_settings(struct rtudp_worker_slot *me, const struct options *o)
{
    for (int i = 0; i < RTUDP_TUNE_COUNT; i++)
        store_relaxed(&me->tunables[i], (int64_t)o->tune[i]);
    store_relaxed(&me->idle_strategy, (uint32_t)o->idle);
}

static void announce(struct rtudp_worker *w, const struct options *o)
{
    struct rtudp_worker_slot *me = w->me;
    struct sched_param sp = {0};
    int policy = sched_getscheduler(0);
    sched_getparam(0, &sp);
    int64_t now = rtudp_now_ns();
    store_relaxed(&me->pid, (uint32_t)getpid());
    store_relaxed(&me->policy, (uint32_t)(policy < 0 ? 0 : policy));
    store_relaxed(&me->priority, (uint32_t)sp.sched_priority);
    store_relaxed(&me->heartbeat_ns, now);
    store_relaxed(&me->channels, 0u);
    store_relaxed(&me->idle_poll, 0u);
    store_relaxed(&me->idle_poller_pid, 0u);
    store_relaxed(&me->spin_margin_ns, w->pacer.spin.margin_ns);
    store_relaxed(&me->idle_source, (uint32_t)rtudp_cpuidle_source(&w->pacer.cpuidle)); /* fixed */
    store_relaxed(&me->rx_coalesce_ns, (uint32_t)w->rx.coalesce_ns);                   /* fixed */
    store_relaxed(&me->tx_coalesce_ns, (uint32_t)w->pacer.coalesce_ns);                /* fixed */
    publish_settings(me, o);
    /* last, with release: the supervisor that sees RUNNING sees the rest */
    atomic_store_explicit(SHARED(&me->state), (uint32_t)RTUDP_WORKER_RUNNING,
                          memory_order_release);
    w->next_tick = now + RTUDP_W_HEARTBEAT_NS;
    w->worked_ns = now; /* it rests only after RTUDP_W_REST_AFTER_NS without work */
}

/* an exit code no step returns: the worker goes on to its next step */
#define GO_ON (-1)

/* one `--option value` into *o: GO_ON, or the exit code of a bad one */
static int parse_option(const char *a, const char *v, struct options *o)
{
    uint32_t n_tunables;
    const struct rtudp_tunable_desc *tunables = rtudp_tunable_table(&n_tunables);
    if (!strcmp(a, "--pool")) {
        if (!rtudp_name_valid(v)) {
            fprintf(stderr, "rtudp-worker: pool name '%s' must match [A-Za-z0-9_.-]{1,%d}\n", v,
                    RTUDP_NAME_MAX);
            return 2;
        }
        o->pool = v;
    } else if (!strcmp(a, "--worker-id")) {
        if (parse_uint(a, v, RTUDP_MAX_WORKERS - 1, &o->worker_id))
            return 2;
    } else if (!strcmp(a, "--cpu")) {
        if (parse_uint(a, v, 4095, &o->cpu))
            return 2;
    } else if (!strcmp(a, "--cmd-fd")) {
        if (parse_uint(a, v, 1 << 20, &o->cmd_fd))
            return 2;
    } else if (!strcmp(a, "--off")) {
        char bad[64];
        if (rtudp_mechanisms_parse(v, &o->off, bad, sizeof bad) != 0) {
            fprintf(stderr, "rtudp-worker: --off: no mechanism named '%s' (rtudp-worker --help "
                            "lists them)\n", bad);
            return 2;
        }
    } else if (!strcmp(a, "--idle")) {
        if ((o->idle = strategy_of(v)) < 0)
            return bad_strategy(v);
    } else if (tunable_of(a) >= 0) {
        const struct rtudp_tunable_desc *t = &tunables[tunable_of(a)];
        if (parse_range(a, v, (long)t->min, (long)t->max, &o->tune[tunable_of(a)]))
            return 2;
    } else {
        fprintf(stderr, "rtudp-worker: unknown option '%s'\n", a);
        return usage(stderr);
    }
    return GO_ON;
}

/* the command socket must be the supervisor's SOCK_SEQPACKET end: a wrong fd would
 * have the worker read commands from something else */
static int check_cmd_fd(long cmd_fd)
{
    struct stat st;
    int type = 0;
    socklen_t tl = sizeof type;
    if (fstat((int)cmd_fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt((int)cmd_fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET) {
        fprintf(stderr, "rtudp-worker: --cmd-fd %ld is not a SOCK_SEQPACKET socket\n", cmd_fd);
        return 2;
    }
    return GO_ON;
}

/* each tunable not given: the idle strategy's value, else the table's default */
static void settle_tunables(struct options *o)
{
    uint32_t n_tunables, n_strategies;
    const struct rtudp_tunable_desc *t = rtudp_tunable_table(&n_tunables);
    const struct rtudp_idle_strategy_desc *s = &rtudp_idle_strategy_table(&n_strategies)[o->idle];
    for (uint32_t i = 0; i < RTUDP_TUNE_COUNT && i < n_tunables; i++) {
        if (o->tune[i] != RTUDP_TUNE_KEEP)
            continue;
        o->tune[i] = (long)(s->values[i] != RTUDP_TUNE_KEEP ? s->values[i] : t[i].default_value);
    }
}

/* the command line into *o: GO_ON, or the exit code (--version and --help end here too) */
static int parse_options(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--version")) {
            printf("rtudp-worker layout %d\n", RTUDP_LAYOUT_VERSION);
            return 0;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout);
        if (i + 1 >= argc) {
            fprintf(stderr, "rtudp-worker: %s needs a value\n", a);
            return usage(stderr);
        }
        int rc = parse_option(a, argv[++i], o);
        if (rc != GO_ON)
            return rc;
    }
    settle_tunables(o);
    if (!o->pool || o->worker_id < 0) {
        fprintf(stderr, "rtudp-worker: --pool and --worker-id are required\n");
        return usage(stderr);
    }
    if (o->cmd_fd < 0) {
        fprintf(stderr, "rtudp-worker: --cmd-fd is required (the supervisor's command socket)\n");
        return usage(stderr);
    }
    return check_cmd_fd(o->cmd_fd);
}

/* process-wide, before any thread exists, so the RX thread inherits it all */
static int set_up_process(const struct options *o)
{
    if (rtudp_w_die_with_parent() != 0)
        return 2;
    rtudp_w_lock_memory();
    rtudp_w_reserve_files();
    if (o->cpu >= 0 && rtudp_w_pin_cpu(o->cpu) != 0)
        return 2;
    if (rtudp_w_set_priority(o->tune[RTUDP_TUNE_RT_PRIORITY]) != 0)
        return 2;
    return GO_ON;
}

/* the worker's settings, then its pool and worker slot mapped and its supervisor
 * watched: GO_ON, or the exit code with nothing left mapped */
static int attach_pool(struct rtudp_worker *w, const struct options *o)
{
    w->pool_name = o->pool;
    w->id = (uint32_t)o->worker_id;
    w->cmd_fd = (int)o->cmd_fd;
    w->pacer.spin_budget_permille = (int)o->tune[RTUDP_TUNE_SPIN_BUDGET];
    w->pacer.off = o->off;
    w->pacer.id = w->id;
    w->pacer.idle_poll = (int)o->tune[RTUDP_TUNE_IDLE_POLL];
    w->pacer.coalesce_ns = (int64_t)o->tune[RTUDP_TUNE_TX_COALESCE_US] * 1000;
    w->pacer.lateness_ns = (int64_t)o->tune[RTUDP_TUNE_TX_LATENESS_US] * 1000;
    w->pacer.qos_fd = -1;
    w->pacer.poller_needed = rtudp_idlepoller_needed();
    w->pacer.qos_costs_host = rtudp_idlepoller_on_vm();
    fcntl(w->cmd_fd, F_SETFD, FD_CLOEXEC);
    w->sup_pidfd = -1;
    if (map_pool(w) != 0 || watch_supervisor(w) != 0) {
        if (w->ctl)
            rtudp_unmap(w->ctl, w->ctl_size);
        return 2;
    }
    return GO_ON;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a parked wait returns to the loop */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* start the RX thread and serve on this one until told to stop: the exit code */
static int serve(struct rtudp_worker *w, const struct options *o)
{
    rtudp_cpuidle_open(&w->pacer.cpuidle, o->cpu, (uint32_t)getpid());
    /* a real-time worker only: at SCHED_OTHER a short sleep ends after the timer slack
     * (by default 50 us) and whatever the scheduler adds, under load many times what
     * was asked, so the wait would not be bounded */
    int64_t coalesce_ns = sched_getscheduler(0) == SCHED_FIFO
                              ? (int64_t)o->tune[RTUDP_TUNE_RX_COALESCE_US] * 1000
                              : 0;
    if (rtudp_tx_init(w) != RTUDP_OK || rtudp_rx_start(&w->rx, coalesce_ns, w->pacer.off) != 0 ||
        rtudp_conductor_start(&w->conductor, &w->me->bell) != 0) {
        fprintf(stderr, "rtudp-worker %u: cannot start (out of memory?)\n", w->id);
        return 1;
    }
    w->rx.bell = &w->me->bell; /* a datagram wakes a resting TX thread (sched.c) */
    rtudp_w_lock_on_fault(); /* set up: channels' memory is locked as it is used */
    announce(w, o);
    rtudp_tx_run(w);
    return 0;
}

/* every channel dropped and both threads stopped, then the slot marked DEAD and the
 * pool let go */
static void tear_down(struct rtudp_worker *w)
{
    rtudp_conductor_stop(&w->conductor); /* what it was given is done or let go */
    rtudp_w_free_awaited(w);
    while (w->n_active) {
        struct rtudp_chan *c = w->active[w->n_active - 1];
        rtudp_chan_drop(w, c);
        rtudp_chan_release(c);
    }
    rtudp_rx_stop(&w->rx);
    rtudp_tx_free(w);
    rtudp_cpuidle_close(&w->pacer.cpuidle);
    atomic_store_explicit(SHARED(&w->me->state), (uint32_t)RTUDP_WORKER_DEAD,
                          memory_order_release);
    rtudp_unmap(w->ctl, w->ctl_size);
    close(w->cmd_fd);
    if (w->sup_pidfd >= 0)
        close(w->sup_pidfd);
}

int main(int argc, char **argv)
{
    struct options o = {.pool = NULL, .worker_id = -1, .cpu = -1, .cmd_fd = -1, .idle = 0};
    for (int i = 0; i < RTUDP_TUNE_COUNT; i++)
        o.tune[i] = RTUDP_TUNE_KEEP; /* not given (settle_tunables) */
    if (argc == 3 && !strcmp(argv[1], RTUDP_IDLEPOLLER_ARG))
        return rtudp_idlepoller_main(argv[2]); /* a worker's idle poller (idlepoller.h) */
    int rc = parse_options(argc, argv, &o);
    if (rc == GO_ON)
        rc = set_up_process(&o);
    if (rc != GO_ON)
        return rc;

    static struct rtudp_worker w; /* large (channel tables): not on the stack */
    if ((rc = attach_pool(&w, &o)) != GO_ON)
        return rc;
    catch_signals();
    rc = serve(&w, &o);
    tear_down(&w);
    return rc;
}
