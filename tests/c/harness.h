/*
 * harness.h - the C tests' tiny framework (no dependencies).
 *
 * CHECK() prints file:line and the failing expression and exits non-zero.  Each
 * test function runs in its own forked child, so one failure (or a crash, or a
 * hang caught by the watchdog) names its test and the others still run.
 *
 * SKIP("why %s", ...) ends a test as skipped.  A skip is only for what this machine
 * lacks (a kernel feature, a privilege, a package), found by probing the machine
 * itself, never by what the code under test reports.  Each skip is counted and
 * named with its reason at the end: lines "skipped NAME: REASON", then the last
 * line "N passed, M failed, K skipped" (what tests/test_c_units.py reads).  The
 * exit status is non-zero when M > 0, and also, where CI is set (to anything but
 * "" or "false"), when a skip is not expected: RTUDP_EXPECTED_SKIPS holds one
 * pattern a line and a skip is expected when "NAME: REASON" contains one of them
 * (.ci/run names there what its machine lacks, and why).
 *
 *   test_x                 run every test
 *   test_x NAME...         run only the tests whose names contain a NAME
 *   test_x --no-fork ...   run in-process (for a debugger)
 *
 * A test program lists its tests in `static const struct test tests[]` with T()
 * and ends with HARNESS_MAIN(tests).  Define TEST_TIMEOUT_S before including to
 * change the per-test watchdog.
 */
#ifndef RTUDP_TEST_HARNESS_H
#define RTUDP_TEST_HARNESS_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 50u /* a test that takes longer is hung */
#endif
#define STEP_TIMEOUT_S 5u  /* bound for a single call that must not block */
#define NS_PER_MS 1000000LL
#define HARNESS_SKIP_STATUS 77 /* a child that exits with it was skipped */
#define HARNESS_REASON_MAX 512

static const char *volatile g_test = "?";
/* what the test is doing now: the watchdog names it when something hangs */
static const char *volatile g_step = "";
/* line of the test that called the helper now checking (0: none) */
static _Thread_local int g_caller;

static inline void die(void)
{
    fflush(stdout);
    fflush(stderr);
    _exit(1); /* not exit(): other threads may still be running */
}

static inline void check_failed(const char *file, int line, const char *what)
{
    if (g_caller)
        fprintf(stderr, "%s:%d: [%s, helper called from line %d] CHECK failed: %s\n", file, line,
                g_test, g_caller, what);
    else
        fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", file, line, g_test, what);
    die();
}

#define CHECK(e)                                                                      \
    do {                                                                              \
        if (!(e))                                                                     \
            check_failed(__FILE__, __LINE__, #e);                                     \
    } while (0)

/* equality of two integers as 64-bit values (printed signed: result codes are
 * negative; a uint64_t above 2^63 prints negative but compares exactly) */
#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long a_ = (long long)(a), b_ = (long long)(b);                           \
        if (a_ != b_) {                                                               \
            char m_[256];                                                             \
            snprintf(m_, sizeof m_, "%s == %s (%lld != %lld)", #a, #b, a_, b_);       \
            check_failed(__FILE__, __LINE__, m_);                                     \
        }                                                                             \
    } while (0)

/* lo <= v <= hi, printing all three */
#define CHECK_IN(v, lo, hi)                                                           \
    do {                                                                              \
        long long v_ = (long long)(v), l_ = (long long)(lo), h_ = (long long)(hi);    \
        if (v_ < l_ || v_ > h_) {                                                     \
            char m_[300];                                                             \
            snprintf(m_, sizeof m_, "%s in [%s, %s] (%lld not in [%lld, %lld])", #v,  \
                     #lo, #hi, v_, l_, h_);                                           \
            check_failed(__FILE__, __LINE__, m_);                                     \
        }                                                                             \
    } while (0)

/* why the running test skipped: shared with the parent across fork() */
static char *g_skip_reason;
static bool g_forked; /* this process is a test's forked child */

/* End the running test as skipped, saying why (printf format).  Callable from any
 * thread of a forked test; with --no-fork it ends the whole run. */
#define SKIP(...)                                                                     \
    do {                                                                              \
        char r_[HARNESS_REASON_MAX];                                                  \
        snprintf(r_, sizeof r_, __VA_ARGS__);                                         \
        harness_skip(r_);                                                             \
    } while (0)

static inline void harness_skip(const char *reason)
{
    if (g_skip_reason)
        snprintf(g_skip_reason, HARNESS_REASON_MAX, "%s", reason);
    if (!g_forked) /* --no-fork: the run ends here, so say why */
        printf("skip %s: %s\n", g_test, reason);
    fflush(stdout);
    fflush(stderr);
    _exit(HARNESS_SKIP_STATUS); /* not exit(): other threads may still be running */
}

/* helpers that check things say which test line called them */
#define AT_LINE(call) ((void)(g_caller = __LINE__), (void)(call), (void)(g_caller = 0))

static inline void on_alarm(int sig)
{
    (void)sig;
    /* async-signal-safe output only */
    static const char a[] = "TIMEOUT in test ";
    static const char b[] = " at step: ";
    static const char c[] = "\n";
    const char *t = g_test, *s = g_step;
    ssize_t rc = write(2, a, sizeof a - 1);
    rc = write(2, t, strlen(t));
    rc = write(2, b, sizeof b - 1);
    rc = write(2, s, strlen(s));
    rc = write(2, c, 1);
    (void)rc;
    _exit(2);
}

/* Run one call that must return promptly (a hang here is a bug, not slowness). */
#define BOUNDED(step, stmt)                                                           \
    do {                                                                              \
        g_step = (step);                                                              \
        alarm(STEP_TIMEOUT_S);                                                        \
        stmt;                                                                         \
        alarm(TEST_TIMEOUT_S);                                                        \
        g_step = "";                                                                  \
    } while (0)

struct test {
    const char *name;
    void (*fn)(void);
};

#define T(f) {#f, f}

static inline int64_t harness_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline bool harness_selected(const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return true;
    for (int i = first; i < argc; i++)
        if (strstr(name, argv[i]))
            return true;
    return false;
}

static inline void harness_run_in_process(const struct test *t)
{
    g_test = t->name;
    signal(SIGALRM, on_alarm);
    alarm(TEST_TIMEOUT_S);
    t->fn();
    alarm(0);
}

/* whether CI is set: there, a skip must be one RTUDP_EXPECTED_SKIPS names */
static inline bool harness_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0;
}

/* whether "name: reason" contains one of RTUDP_EXPECTED_SKIPS's lines */
static inline bool harness_skip_expected(const char *name, const char *reason)
{
    const char *list = getenv("RTUDP_EXPECTED_SKIPS");
    if (!list)
        return false;
    char what[HARNESS_REASON_MAX + 128];
    snprintf(what, sizeof what, "%s: %s", name, reason);
    while (*list) {
        const char *end = strchr(list, '\n');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        char pat[HARNESS_REASON_MAX];
        if (len > 0 && len < sizeof pat) {
            memcpy(pat, list, len);
            pat[len] = 0;
            if (strstr(what, pat))
                return true;
        }
        if (!end)
            break;
        list = end + 1;
    }
    return false;
}

struct harness_skipped {
    const char *name;
    char reason[HARNESS_REASON_MAX];
};

/* run one test in a forked child: 1 passed, 0 failed, -1 skipped (reason in g_skip_reason) */
static inline int harness_run_forked(const struct test *t)
{
    fflush(stdout);
    fflush(stderr);
    g_skip_reason[0] = 0;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        g_forked = true;
        harness_run_in_process(t);
        fflush(stdout);
        exit(0); /* exit, not _exit: lets LeakSanitizer check the test */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        fprintf(stderr, "%s: killed by signal %d\n", t->name, WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == HARNESS_SKIP_STATUS && g_skip_reason[0])
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static inline int harness_main(const struct test *tests, size_t n, int argc, char **argv)
{
    int first = 1;
    bool fork_each = true;
    if (argc > 1 && strcmp(argv[1], "--no-fork") == 0) {
        fork_each = false;
        first = 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_skip_reason = mmap(NULL, HARNESS_REASON_MAX, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_skip_reason == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    struct harness_skipped *skipped = calloc(n ? n : 1, sizeof *skipped);
    if (!skipped) {
        perror("calloc");
        return 2;
    }
    int passed = 0, failed = 0, nskipped = 0;
    for (size_t i = 0; i < n; i++) {
        const struct test *t = &tests[i];
        if (!harness_selected(t->name, argc, argv, first))
            continue;
        int64_t t0 = harness_now_ns();
        int result = 1;
        if (fork_each)
            result = harness_run_forked(t);
        else
            harness_run_in_process(t);
        const char *word = result > 0 ? "ok  " : result < 0 ? "skip" : "FAIL";
        printf("%s %s (%lld ms)%s%s\n", word, t->name,
               (long long)((harness_now_ns() - t0) / NS_PER_MS), result < 0 ? ": " : "",
               result < 0 ? g_skip_reason : "");
        if (result > 0) {
            passed++;
        } else if (result < 0) {
            skipped[nskipped].name = t->name;
            snprintf(skipped[nskipped].reason, HARNESS_REASON_MAX, "%s", g_skip_reason);
            nskipped++;
        } else {
            failed++;
        }
    }
    int unexpected = 0;
    for (int i = 0; i < nskipped; i++) {
        bool expected = harness_skip_expected(skipped[i].name, skipped[i].reason);
        if (harness_in_ci() && !expected)
            unexpected++;
        printf("skipped %s: %s%s\n", skipped[i].name, skipped[i].reason,
               harness_in_ci() && !expected ? " [not in RTUDP_EXPECTED_SKIPS: fails in CI]" : "");
    }
    free(skipped);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, nskipped);
    return failed || unexpected ? 1 : 0;
}

#define HARNESS_MAIN(tests)                                                           \
    int main(int argc, char **argv)                                                   \
    {                                                                                 \
        return harness_main(tests, sizeof(tests) / sizeof((tests)[0]), argc, argv);   \
    }


/* ------------------------------------------------------------------ test data */

/* deterministic randomness: a failure reproduces from its seed */
static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform-enough integer in [0, n) */
static inline uint64_t rnd(uint64_t *s, uint64_t n) { return n ? splitmix64(s) % n : 0; }

static inline uint64_t align8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

/* Payload bytes are a function of (key, index): a record that comes back with the
 * right key and length but any wrong byte (zeroed, overwritten, torn) is caught. */
static inline void fill(uint8_t *p, uint32_t len, uint64_t key)
{
    uint64_t s = key, v = 0;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            v = splitmix64(&s);
        p[i] = (uint8_t)(v >> (8 * (i & 7)));
    }
}

static inline bool verify(const uint8_t *p, uint32_t len, uint64_t key)
{
    uint64_t s = key, v = 0;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            v = splitmix64(&s);
        if (p[i] != (uint8_t)(v >> (8 * (i & 7))))
            return false;
    }
    return true;
}


/* zero-filled memory of exactly `size` bytes (a multiple of 64): ASan sees any
 * access past a ring's footprint */
/* n threads running fn, thread i given &ids[i] (set to i first) */
static inline void start_numbered_threads(pthread_t *t, int *ids, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++) {
        ids[i] = i;
        CHECK_EQ(pthread_create(&t[i], NULL, fn, &ids[i]), 0);
    }
}

static inline void *zalloc64(uint64_t size)
{
    /* C11 aligned_alloc wants a multiple of the alignment; footprints are */
    CHECK(size % 64 == 0);
    void *p = aligned_alloc(64, (size_t)size);
    CHECK(p != NULL);
    memset(p, 0, (size_t)size);
    return p;
}

#endif /* RTUDP_TEST_HARNESS_H */
