/* sock_cmsg.h - a send's one SOL_SOCKET control message carrying a uint32. */
#ifndef RTUDP_SOCK_CMSG_H
#define RTUDP_SOCK_CMSG_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

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

#endif
