/*
 * rtudp-worker - the native worker process.
 *
 * For now it starts, validates its arguments and exits: the main loop, the
 * scheduler and socket I/O arrive with the worker-pool issue.  It is built and
 * installed inside the package (rtudp/workers/rtudp-worker) so the supervisor
 * finds it without PATH tricks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall(), clock_gettime() */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtudp_shm.h"

static int usage(FILE *out)
{
    fprintf(out, "usage: rtudp-worker --pool NAME --worker-id N [--cpu N]\n"
                 "       rtudp-worker --version\n");
    return out == stderr ? 2 : 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RTUDP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int parse_uint(const char *opt, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0 || v > max) {
        fprintf(stderr, "rtudp-worker: %s must be an integer in 0..%ld, got '%s'\n", opt, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *pool = NULL;
    long worker_id = -1, cpu = -1;
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
        const char *v = argv[++i];
        if (!strcmp(a, "--pool")) {
            if (!valid_name(v)) {
                fprintf(stderr, "rtudp-worker: pool name '%s' must match [A-Za-z0-9_.-]{1,%d}\n",
                        v, RTUDP_NAME_MAX);
                return 2;
            }
            pool = v;
        } else if (!strcmp(a, "--worker-id")) {
            if (parse_uint(a, v, 1023, &worker_id))
                return 2;
        } else if (!strcmp(a, "--cpu")) {
            if (parse_uint(a, v, 4095, &cpu))
                return 2;
        } else {
            fprintf(stderr, "rtudp-worker: unknown option '%s'\n", a);
            return usage(stderr);
        }
    }
    if (!pool || worker_id < 0) {
        fprintf(stderr, "rtudp-worker: --pool and --worker-id are required\n");
        return usage(stderr);
    }
    printf("rtudp-worker %ld for pool '%s': arguments valid; the worker loop is not built yet\n",
           worker_id, pool);
    return 0;
}
