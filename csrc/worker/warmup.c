/*
 * warmup.c - a datagram through the send path before a deadline after a long park
 * (see warmup.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg */
#endif
#include "warmup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring.h" /* rtudp_now_ns */

void rtudp_warmup_init(struct rtudp_warmup *wu)
{
    memset(wu, 0, sizeof *wu);
    wu->fd = -1;
    wu->lead_ns = RTUDP_WARMUP_LEAD_START_NS;
}

int rtudp_warmup_open(struct rtudp_warmup *wu)
{
    rtudp_warmup_init(wu);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    wu->fd = fd;
    return 0;
}

void rtudp_warmup_close(struct rtudp_warmup *wu)
{
    if (wu->fd >= 0)
        close(wu->fd);
    wu->fd = -1;
}

int rtudp_warmup_wanted(const struct rtudp_warmup *wu, int64_t park_ns)
{
    return wu->fd >= 0 && park_ns >= RTUDP_WARMUP_AFTER_NS;
}

void rtudp_warmup_took(struct rtudp_warmup *wu, int64_t took_ns)
{
    if (took_ns < 0)
        took_ns = 0;
    wu->recent[wu->next] = took_ns;
    wu->next = (wu->next + 1) % RTUDP_WARMUP_RECENT;
    int64_t longest = 0;
    for (uint32_t i = 0; i < RTUDP_WARMUP_RECENT; i++)
        if (wu->recent[i] > longest)
            longest = wu->recent[i];
    /* compared before adding: a warm-up the host stalled for seconds must not overflow */
    int64_t lead = longest >= RTUDP_WARMUP_LEAD_MAX_NS - RTUDP_WARMUP_SLACK_NS
                       ? RTUDP_WARMUP_LEAD_MAX_NS
                       : longest + RTUDP_WARMUP_SLACK_NS;
    wu->lead_ns = lead < RTUDP_WARMUP_LEAD_MIN_NS ? RTUDP_WARMUP_LEAD_MIN_NS : lead;
}

void rtudp_warmup_run(struct rtudp_warmup *wu)
{
    if (wu->fd < 0)
        return;
    static const uint8_t byte = 0;
    int64_t t0 = rtudp_now_ns();
    /* a full queue (EAGAIN: never drained?) or any error: not counted, no harm */
    if (send(wu->fd, &byte, sizeof byte, 0) == (ssize_t)sizeof byte) {
        wu->unread++;
        wu->count++;
        rtudp_warmup_took(wu, rtudp_now_ns() - t0);
    }
}

void rtudp_warmup_drain(struct rtudp_warmup *wu)
{
    if (wu->fd < 0 || !wu->unread)
        return;
    uint8_t sink[RTUDP_WARMUP_DRAIN_BATCH];
    struct iovec iov[RTUDP_WARMUP_DRAIN_BATCH];
    struct mmsghdr msgs[RTUDP_WARMUP_DRAIN_BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < RTUDP_WARMUP_DRAIN_BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = &sink[i], .iov_len = 1};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    /* what was sent is in the queue by now (loopback delivers within the send call);
     * a datagram missing for any reason must not make this spin */
    while (wu->unread) {
        unsigned want = wu->unread < RTUDP_WARMUP_DRAIN_BATCH ? wu->unread : RTUDP_WARMUP_DRAIN_BATCH;
        int n = recvmmsg(wu->fd, msgs, want, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            wu->unread = 0;
            return;
        }
        wu->unread -= (uint32_t)n;
    }
}
