/* direct_send.c - a client's immediate send made on the channel socket (direct_send.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall() */
#endif
#include "direct_send.h"

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pidfd.h"
#include "shm_access.h"
#include "sock_cmsg.h"

#ifndef SO_TIMESTAMPING
#define SO_TIMESTAMPING 37
#endif

void rtudp_direct_init(struct rtudp_direct *d)
{
    memset(d, 0, sizeof *d);
    d->fd = -1;
}

void rtudp_direct_close(struct rtudp_direct *d)
{
    if (d->shared && d->fd >= 0)
        close(d->fd);
    rtudp_direct_init(d);
}

bool rtudp_direct_on(const struct rtudp_direct *d)
{
    return d->shared != NULL;
}

static int sock_port(const struct sockaddr_storage *ss, int *family)
{
    *family = ss->ss_family;
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

/* fd is a UDP socket bound to family/port (and connected if asked), or why says what
 * it is not */
static int check_socket(int fd, int family, uint16_t port, bool connected,
                        struct rtudp_check *why)
{
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM)
        return rtudp_check_set(why, RTUDP_EINVAL, "fd is not a datagram socket");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fam = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "getsockname: %s", strerror(errno));
    int got = sock_port(&ss, &fam);
    if (fam != family || got != port)
        return rtudp_check_set(why, RTUDP_EINVAL,
                               "socket is bound to family %d port %d, not the channel's "
                               "family %d port %u (the channel was replaced?)",
                               fam, got, family, (unsigned)port);
    sl = sizeof ss;
    if (connected && getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "socket is not connected: each send would "
                                                  "have to name the remote");
    return RTUDP_OK;
}

int rtudp_channel_socket_dup(int pid, int their_fd, int family, uint16_t local_port,
                             bool connected, int *fd_out, struct rtudp_check *why)
{
    *fd_out = -1;
    if (pid <= 0 || their_fd < 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "pid %d fd %d: nothing to duplicate", pid,
                               their_fd);
    const char *step;
    int fd = rtudp_fd_of(pid, their_fd, &step);
    if (fd < 0)
        return rtudp_check_set(why, RTUDP_ESYS, "%s(pid %d, fd %d): %s", step, pid, their_fd,
                               strerror(-fd));
    int rc = check_socket(fd, family, local_port, connected, why);
    if (rc != RTUDP_OK) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return RTUDP_OK;
}

int rtudp_direct_open(struct rtudp_direct *d, int pid, int their_fd, int family,
                      uint16_t local_port, struct rtudp_direct_tx *shared, int64_t quiet_ns,
                      struct rtudp_check *why)
{
    rtudp_direct_init(d);
    if (!shared || quiet_ns < 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "no direct line, or quiet_ns %lld < 0",
                               (long long)quiet_ns);
    int fd;
    int rc = rtudp_channel_socket_dup(pid, their_fd, family, local_port, true, &fd, why);
    if (rc != RTUDP_OK)
        return rc;
    d->fd = fd;
    d->shared = shared;
    d->quiet_ns = quiet_ns;
    d->idle_seen_ns = INT64_MIN / 2;
    return RTUDP_OK;
}

/* Nothing queued: every record before tail has left and been freed. */
static bool ring_drained(const struct rtudp_mpsc *m)
{
    return load_acquire(&m->ring->head) == load_acquire(&m->ring->tail);
}

/* the channel block whose direct line d uses */
static const struct rtudp_channel_block *block_of(const struct rtudp_direct *d)
{
    return (const void *)((const uint8_t *)d->shared -
                          offsetof(struct rtudp_channel_block, direct));
}

bool rtudp_direct_try(struct rtudp_direct *d, const struct rtudp_mpsc *m, const void *data,
                      uint32_t len)
{
    if (!d->shared)
        return false;
    uint32_t state = load_relaxed(&d->shared->state);
    if (state != RTUDP_DIRECT_ON) {
        /* revoked (the channel closed): our duplicate must not keep its port bound */
        if (state == RTUDP_DIRECT_REVOKED || state == RTUDP_DIRECT_NEVER)
            rtudp_direct_close(d);
        return false;
    }
    /* impaired or tapped: the worker sends it (impairs it, mirrors it to the tap with
     * its kernel TX stamp) */
    if (!rtudp_direct_terms(block_of(d)))
        return false;
    /* the worker serving the channel now (it may have moved) is parked */
    struct rtudp_doorbell *wake;
    struct rtudp_ready_set *ready;
    rtudp_mpsc_consumer(m, &wake, &ready);
    if (!wake || load_relaxed(&wake->waiters) == 0 || !ring_drained(m))
        return false;
    int64_t now = rtudp_now_ns();
    bool quiet = now - d->idle_seen_ns >= d->quiet_ns;
    d->idle_seen_ns = now;
    if (!quiet)
        return false;
    /* no TX stamp for this one: the error queue is the worker's, keyed by its sends */
    union rtudp_cmsg_u32 ctl;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    rtudp_cmsg_u32_set(&mh, &ctl, SO_TIMESTAMPING, 0);
    if (sendmsg(d->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len) {
        fetch_add(&d->shared->fallbacks, 1);
        return false;
    }
    fetch_add(&d->shared->packets, 1);
    fetch_add(&d->shared->bytes, len);
    return true;
}
