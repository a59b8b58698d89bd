/* sock_cmsg.h - a send's one SOL_SOCKET control message carrying a uint32. */
#ifndef RTUDP_SOCK_CMSG_H
#define RTUDP_SOCK_CMSG_H

#include <arpa/inet.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Older uapi headers lack it; the value is the asm-generic one (x86, arm, riscv...) */
#ifndef SCM_TS_OPT_ID
#if !defined(__alpha__) && !defined(__mips__) && !defined(__hppa__) && !defined(__sparc__)
#define SCM_TS_OPT_ID 81
#endif
#endif

union rtudp_cmsg_u32 {
    char buf[CMSG_SPACE(sizeof(uint32_t))];
    struct cmsghdr align;
};

/* Point mh's control at ctl, holding (SOL_SOCKET, type, value). */
static inline void rtudp_cmsg_u32_set(struct msghdr *mh, union rtudp_cmsg_u32 *ctl, int type,
                                      uint32_t value)
{
    memset(ctl, 0, sizeof *ctl);
    mh->msg_control = ctl->buf;
    mh->msg_controllen = sizeof ctl->buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof value);
    memcpy(CMSG_DATA(c), &value, sizeof value);
}

/*
 * Can this kernel take a TX stamp's key per packet (SCM_TS_OPT_ID, Linux 6.13+)?  Asked
 * with a throwaway socket sending one empty datagram to itself on 127.0.0.1: a kernel
 * without SCM_TS_OPT_ID refuses the cmsg with EINVAL.  Any other failure (no IPv4
 * loopback) answers "no", which only means keys are counted instead.
 */
static inline int rtudp_tskey_cmsg_works(void)
{
#ifndef SCM_TS_OPT_ID
    return 0;
#else
    int ok = 0;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |
                SOF_TIMESTAMPING_OPT_TSONLY;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &al) == 0 &&
        setsockopt(s, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0) {
        union rtudp_cmsg_u32 ctl;
        struct msghdr mh = {.msg_name = &a, .msg_namelen = sizeof a};
        rtudp_cmsg_u32_set(&mh, &ctl, SCM_TS_OPT_ID, 0);
        ok = sendmsg(s, &mh, MSG_DONTWAIT) == 0;
    }
    close(s);
    return ok;
#endif
}

#endif
