/*
 * recv_bench.c - what a C program gets out of a socket full of datagrams: recvmmsg in
 * batches, the payloads copied to one buffer, nothing else, so a Python reader's rate
 * has the kernel's own next to it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg */
#endif
#include "recv_bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RTUDP_BENCH_RECV_BATCH 64u

int64_t rtudp_bench_recvmmsg(int fd, uint64_t max, uint32_t size)
{
    if (size == 0)
        return -EINVAL;
    uint8_t *buf = malloc((size_t)RTUDP_BENCH_RECV_BATCH * size);
    if (!buf)
        return -ENOMEM;
    struct mmsghdr mm[RTUDP_BENCH_RECV_BATCH];
    struct iovec iov[RTUDP_BENCH_RECV_BATCH];
    uint64_t got = 0;
    int64_t rc = 0;
    while (got < max) {
        unsigned want = max - got < RTUDP_BENCH_RECV_BATCH ? (unsigned)(max - got)
                                                            : RTUDP_BENCH_RECV_BATCH;
        memset(mm, 0, sizeof mm);
        for (unsigned i = 0; i < want; i++) {
            iov[i].iov_base = buf + (size_t)i * size;
            iov[i].iov_len = size;
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, mm, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (got == 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                rc = -errno;
            break;
        }
        got += (uint64_t)n;
        if ((unsigned)n < want)
            break;
    }
    free(buf);
    return rc < 0 ? rc : (int64_t)got;
}
