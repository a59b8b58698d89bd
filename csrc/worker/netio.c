/*
 * netio.c - batched UDP send/receive with kernel timestamps (see netio.h).
 *
 * TX stamps come back on the error queue keyed by SOF_TIMESTAMPING_OPT_ID.  The
 * kernel's key is a per-socket counter of datagrams sent, which it rolls back when
 * a send fails inside the IP layer but not when it fails later (a netfilter drop),
 * so a mirrored count can drift.  Where the kernel accepts SCM_TS_OPT_ID (Linux
 * 6.13+) every packet therefore carries its key explicitly and the mirror is the
 * truth; otherwise netio counts what sendmmsg reports sent, which matches the
 * kernel in every case except such late drops.
 *
 * Control messages are parsed only through checked helpers: a cmsg is used only
 * when its whole declared length lies inside the control buffer the kernel filled
 * and is at least the length of what we copy out (with memcpy: CMSG_DATA need not
 * be aligned for the struct).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#endif
#include "netio.h"
#include "sysfile.h"
#include "shm_access.h"
#include "sock_cmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <linux/ethtool.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif


#define NS 1000000000LL

/* room per message for what the kernel attaches (CMSG_SPACE on 64-bit): received,
 * scm_timestamping64 (64) + the RXQ_OVFL count (16) + the UDP_GRO segment size (24);
 * on the error queue,
 * scm_timestamping64 (64) + sock_extended_err and offender address (IPv6: 64).
 * The rest is slack for cmsgs we did not ask for (IP_PKTINFO set by someone: 32);
 * beyond it the kernel sets MSG_CTRUNC and we parse what fits. */
#define CTL_RX 160
#define CTL_ERRQ 192

/* The sends and receives as bare system calls: libc's wrappers are cancellation
 * points, and mark the thread cancellable around each call, which the worker's
 * threads (never cancelled) would pay for at every call. */
static inline int send_mmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    return (int)syscall(SYS_sendmmsg, fd, mm, n, flags);
}

static inline ssize_t send_to(int fd, const void *buf, size_t len, int flags,
                              const struct sockaddr *dst, socklen_t dst_len)
{
    return (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, dst, dst_len);
}

static inline ssize_t send_msg(int fd, const struct msghdr *mh, int flags)
{
    return (ssize_t)syscall(SYS_sendmsg, fd, mh, flags);
}

static inline int recv_mmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    return (int)syscall(SYS_recvmmsg, fd, mm, n, flags, NULL);
}

static inline int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* ------------------------------------------------------------------ clock map */

void rtudp_clockmap_init(struct rtudp_clockmap *m)
{
    store_relaxed(&m->refreshes, 0);
    rtudp_clockmap_refresh(m, 0, 1);
}

int rtudp_clockmap_refresh(struct rtudp_clockmap *m, int64_t now_mono, int force)
{
    if (!force) {
        if (!now_mono)
            now_mono = clock_ns(CLOCK_MONOTONIC);
        int64_t at = load_relaxed(&m->refreshed_ns);
        if (at && now_mono - at < RTUDP_CLOCKMAP_MAX_AGE_NS && now_mono >= at)
            return 0;
    }
    /* A preemption or VM exit between two reads widens that bracket only, and
     * the tightest of a few is kept: typically tens of ns wide. */
    int64_t best_w = INT64_MAX, off = 0, at = 0;
    for (int i = 0; i < RTUDP_CLOCKMAP_TRIES; i++) {
        int64_t a = clock_ns(CLOCK_MONOTONIC);
        int64_t r = clock_ns(CLOCK_REALTIME);
        int64_t b = clock_ns(CLOCK_MONOTONIC);
        if (b - a < best_w) {
            best_w = b - a;
            off = r - (a + (b - a) / 2);
            at = b;
        }
    }
    store_relaxed(&m->offset_ns, off);
    store_relaxed(&m->bound_ns, (best_w + 1) / 2 + 1); /* +1: the midpoint's rounding */
    store_relaxed(&m->refreshed_ns, at);
    store_relaxed(&m->refreshes, load_relaxed(&m->refreshes) + 1);
    return 1;
}

int64_t rtudp_clockmap_to_mono(const struct rtudp_clockmap *m, int64_t realtime_ns)
{
    return realtime_ns - load_relaxed(&m->offset_ns);
}

static struct rtudp_clockmap g_map; /* refreshed_ns == 0: never measured */

struct rtudp_clockmap *rtudp_net_clockmap(void)
{
    if (!load_relaxed(&g_map.refreshed_ns))
        rtudp_clockmap_refresh(&g_map, 0, 1);
    return &g_map;
}

/* ------------------------------------------------------------------ per-fd state */

/* The send path needs a key counter per socket but takes only an fd: state lives
 * in chunks of a fixed table, allocated on first setup and never freed or moved,
 * so a lookup needs no lock. */
struct fd_state {
    uint32_t next_key; /* key of the next packet sent */
    uint32_t use_cmsg; /* send keys with SCM_TS_OPT_ID */
    uint32_t on_ask;   /* software TX stamps only where a send asks (stamps_send) */
    uint32_t hw;       /* hardware stamps: every packet is stamped (see stamps_send) */
    uint32_t set_up;
    uint32_t gso;      /* the kernel takes UDP_SEGMENT sends on this socket */
};

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
static struct fd_state *_Atomic g_chunks[RTUDP_NET_MAX_FD >> CHUNK_BITS];

static struct fd_state *fd_state(int fd, bool create)
{
    if (fd < 0 || fd >= RTUDP_NET_MAX_FD)
        return NULL;
    _Atomic(struct fd_state *) *slot = &g_chunks[fd >> CHUNK_BITS];
    struct fd_state *c = atomic_load_explicit(slot, memory_order_acquire);
    if (!c) {
        if (!create)
            return NULL;
        struct fd_state *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
        if (!fresh)
            return NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &c, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            c = fresh;
        else
            free(fresh); /* another thread won; c is its chunk */
    }
    return &c[fd & (CHUNK_SIZE - 1)];
}

/* ------------------------------------------------------------------ cmsg helpers */

/* payload of c if it holds at least `need` bytes and lies inside msg's control */
static const void *cmsg_data_checked(const struct msghdr *msg, const struct cmsghdr *c, size_t need)
{
    const char *base = msg->msg_control;
    const char *p = (const char *)c;
    size_t avail = msg->msg_controllen;
    if (p < base || (size_t)(p - base) > avail)
        return NULL;
    size_t room = avail - (size_t)(p - base);
    if (c->cmsg_len > room || c->cmsg_len < CMSG_LEN(need))
        return NULL;
    return CMSG_DATA(c);
}

static bool valid_ts(int64_t sec, int64_t nsec)
{
    return sec >= 0 && sec < INT64_MAX / NS - 1 && nsec >= 0 && nsec < NS;
}

/* SCM_TIMESTAMPING in its old (native long) or new (64-bit) layout; ts[i] = 0 when
 * absent.  Returns false if the cmsg is not one or is malformed. */
static bool parse_scm_ts(const struct msghdr *msg, const struct cmsghdr *c, int64_t ts[3])
{
    if (c->cmsg_level != SOL_SOCKET)
        return false;
    int64_t v[6];
    if (c->cmsg_type == SO_TIMESTAMPING_NEW) {
        const void *d = cmsg_data_checked(msg, c, 6 * sizeof(int64_t));
        if (!d)
            return false;
        memcpy(v, d, sizeof v);
    } else if (c->cmsg_type == SO_TIMESTAMPING_OLD) {
        long l[6];
        const void *d = cmsg_data_checked(msg, c, sizeof l);
        if (!d)
            return false;
        memcpy(l, d, sizeof l);
        for (int i = 0; i < 6; i++)
            v[i] = l[i];
    } else {
        return false;
    }
    for (int i = 0; i < 3; i++) {
        int64_t s = v[2 * i], n = v[2 * i + 1];
        ts[i] = (s || n) && valid_ts(s, n) ? s * NS + n : 0;
    }
    return true;
}

/* ------------------------------------------------------------------ setup */

/* whether this kernel takes a key per packet (sock_cmsg.h), asked once per process */
static int probe_tskey_cmsg(void)
{
    static _Atomic int known = -1;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k < 0) {
        k = rtudp_tskey_cmsg_works();
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k;
}

/* the interface fd is bound to (SO_BINDTODEVICE, else the one holding its address) */
static int bound_ifname(int fd, char name[IF_NAMESIZE], struct rtudp_check *why)
{
    socklen_t nl = IF_NAMESIZE;
    memset(name, 0, IF_NAMESIZE);
    if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &nl) == 0 && nl > 0 && name[0]) {
        name[IF_NAMESIZE - 1] = '\0';
        return RTUDP_OK;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: getsockname: %s", fd, strerror(errno));
    /* compare as IPv4 when it is one (also an IPv4-mapped IPv6 address) */
    struct in_addr v4;
    struct in6_addr v6;
    bool is4;
    if (ss.ss_family == AF_INET) {
        v4 = ((struct sockaddr_in *)&ss)->sin_addr;
        is4 = true;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        v6 = s6->sin6_addr;
        is4 = IN6_IS_ADDR_V4MAPPED(&v6);
        if (is4)
            memcpy(&v4, &v6.s6_addr[12], 4);
        else if (s6->sin6_scope_id && if_indextoname(s6->sin6_scope_id, name))
            return RTUDP_OK;
    }
    if ((is4 && v4.s_addr == htonl(INADDR_ANY)) || (!is4 && IN6_IS_ADDR_UNSPECIFIED(&v6)))
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "fd %d: hardware timestamps need the socket bound to one interface "
                    "(an address or SO_BINDTODEVICE), not the wildcard address", fd);
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: getifaddrs: %s", fd, strerror(errno));
    bool found = false;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        bool match = false;
        if (is4 && i->ifa_addr->sa_family == AF_INET)
            match = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == v4.s_addr;
        else if (!is4 && i->ifa_addr->sa_family == AF_INET6)
            match = IN6_ARE_ADDR_EQUAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, &v6);
        if (match) {
            snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
            found = true;
            break;
        }
    }
    freeifaddrs(ifs);
    return found ? RTUDP_OK
                 : rtudp_check_set(why, RTUDP_EINVAL, "fd %d: no interface holds the address it is bound to",
                        fd);
}

/* make ifname stamp every packet in hardware, or say why it cannot */
static int enable_hw(int fd, const char *ifname, int *phc_index, struct rtudp_check *why)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);

    /* what the driver says it can do (not every driver answers: then just try) */
    struct ethtool_ts_info info;
    memset(&info, 0, sizeof info);
    info.cmd = ETHTOOL_GET_TS_INFO;
    info.phc_index = -1;
    ifr.ifr_data = (void *)&info;
    if (ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
        const uint32_t need = SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_RX_HARDWARE |
                              SOF_TIMESTAMPING_RAW_HARDWARE;
        if ((info.so_timestamping & need) != need)
            return rtudp_check_set(why, RTUDP_EINVAL,
                        "fd %d: interface %s cannot timestamp in hardware (driver offers "
                        "so_timestamping=0x%x, needs TX/RX/RAW_HARDWARE 0x%x)",
                        fd, ifname, info.so_timestamping, need);
        if (!(info.rx_filters & (1u << HWTSTAMP_FILTER_ALL)))
            return rtudp_check_set(why, RTUDP_EINVAL,
                        "fd %d: interface %s cannot hardware-stamp every received packet "
                        "(rx_filters=0x%x lack HWTSTAMP_FILTER_ALL)", fd, ifname, info.rx_filters);
        *phc_index = info.phc_index;
    }

    struct hwtstamp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    ifr.ifr_data = (void *)&cfg;
    if (ioctl(fd, SIOCGHWTSTAMP, &ifr) == 0 && cfg.tx_type == HWTSTAMP_TX_ON &&
        cfg.rx_filter == HWTSTAMP_FILTER_ALL)
        return RTUDP_OK; /* already so: leave other users' setting alone */
    memset(&cfg, 0, sizeof cfg);
    cfg.tx_type = HWTSTAMP_TX_ON;
    cfg.rx_filter = HWTSTAMP_FILTER_ALL;
    if (ioctl(fd, SIOCSHWTSTAMP, &ifr) != 0)
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "fd %d: interface %s cannot timestamp in hardware (SIOCSHWTSTAMP: %s)", fd,
                    ifname, strerror(errno));
    /* the driver writes back what it did: it may have picked another filter */
    if (cfg.tx_type != HWTSTAMP_TX_ON || cfg.rx_filter != HWTSTAMP_FILTER_ALL)
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "fd %d: interface %s accepted hardware stamps only as tx_type=%d "
                    "rx_filter=%d (need TX_ON, FILTER_ALL)", fd, ifname, cfg.tx_type,
                    cfg.rx_filter);
    return RTUDP_OK;
}

/* fd's address family, if fd is a UDP socket of AF_INET or AF_INET6; else why not */
static int check_udp_socket(int fd, int *family, struct rtudp_check *why)
{
    int type = 0, proto = 0, dom = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "fd %d: not a socket (%s)", fd, strerror(errno));
    l = sizeof proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) != 0)
        proto = -1;
    l = sizeof dom;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0)
        dom = -1;
    if (type != SOCK_DGRAM || proto != IPPROTO_UDP || (dom != AF_INET && dom != AF_INET6))
        return rtudp_check_set(why, RTUDP_EINVAL,
                    "fd %d: not a UDP socket (domain %d, type %d, protocol %d)", fd, dom, type,
                    proto);
    *family = dom;
    return RTUDP_OK;
}

/* hardware stamps on the interface fd is bound to, named in c->ifname with its PTP
 * clock in c->phc_index */
static int set_up_hw(int fd, struct rtudp_net_caps *c, struct rtudp_check *why)
{
    char ifname[IF_NAMESIZE];
    int rc = bound_ifname(fd, ifname, why);
    if (rc != RTUDP_OK)
        return rc;
    rc = enable_hw(fd, ifname, &c->phc_index, why);
    if (rc != RTUDP_OK)
        return rc;
    snprintf(c->ifname, sizeof c->ifname, "%s", ifname);
    return RTUDP_OK;
}

/* the SO_TIMESTAMPING flags setup asks for.  on_ask: software TX stamps are asked
 * for by the sends that want one (stamps_send), not by the socket: a send with a
 * control message of the socket level costs the kernel a route lookup even on a
 * connected socket, which a lone packet, unstamped, then does without. */
static int stamp_flags(int want_hw, int on_ask)
{
    /* OPT_CMSG is not asked for: with OPT_TSONLY and OPT_ID the stamp, the key and
     * its type are all we read, and those come without it. */
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    if (!on_ask)
        flags |= SOF_TIMESTAMPING_TX_SOFTWARE;
    if (want_hw)
        /* OPT_TX_SWHW: without it the kernel skips the software TX stamp of a
         * packet the NIC stamps, and the callback needs the software one */
        flags |= SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_RX_HARDWARE |
                 SOF_TIMESTAMPING_RAW_HARDWARE | SOF_TIMESTAMPING_OPT_TX_SWHW;
    return flags;
}

/* Set flags as fd's SO_TIMESTAMPING.  *stamps says whether the kernel stamps: 0 where
 * it has no SO_TIMESTAMPING (or RTUDP_FORCE_FALLBACK names it), said once. */
static int turn_on_stamps(int fd, int want_hw, int flags, int *stamps, struct rtudp_check *why)
{
    /* OPT_ID zeroes the kernel's key counter only when it was off: turn it off first
     * so the count we mirror starts at 0 even on a socket set up before */
    int zero = 0;
    int on = !rtudp_compat_forced("so_timestamping");
    if (on && (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &zero, sizeof zero) != 0 ||
               setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)) {
        /* hardware stamps were asked for: no fallback; else (an emulator, a sandbox
         * without it) departures and arrivals are read from the clock at the call */
        if (want_hw || errno != ENOPROTOOPT)
            return rtudp_check_set(why, RTUDP_ESYS, "fd %d: SO_TIMESTAMPING 0x%x: %s", fd,
                                   (unsigned)flags, strerror(errno));
        on = 0;
    }
    if (!on) {
        static atomic_int said;
        rtudp_compat_note(&said, "SO_TIMESTAMPING", rtudp_compat_forced("so_timestamping") ? 0 :
                          ENOPROTOOPT, "send and receive times come from the clock at the call");
    }
    *stamps = on;
    return RTUDP_OK;
}

/* the SO_TIMESTAMPING flags fd has now: as the kernel reads them back, else those
 * just set; none without stamps */
static uint32_t stamps_set(int fd, int stamps, int flags)
{
    if (!stamps)
        return 0;
    int got = 0;
    socklen_t l = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &got, &l) != 0)
        got = flags;
    return (uint32_t)got;
}

/* Whether fd stamps with every flag of `flags` already; if so, and it has more of the
 * socket's TX stamps than `flags` (set up by a worker stamping every send), it is
 * given exactly `flags`.  That is one setsockopt, not off and on again: OPT_ID stays
 * on throughout, so the sends of the worker that serves it meanwhile, each with its
 * own key, go on. */
static int stamps_on(int fd, int flags)
{
    int got = 0;
    socklen_t l = sizeof got;
    if (rtudp_compat_forced("so_timestamping") ||
        getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &got, &l) != 0 || (got & flags) != flags)
        return 0;
    return got == flags || setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0;
}

/* Software (and with want_hw hardware) stamps with OPT_ID keys, recorded in c's
 * tsflags, sw_tx and sw_rx; *stamps says whether the kernel stamps at all.  on_ask:
 * as stamp_flags */
static int set_up_stamps(int fd, int want_hw, int on_ask, int adopt, struct rtudp_net_caps *c,
                         int *stamps, struct rtudp_check *why)
{
    int flags = stamp_flags(want_hw, on_ask);
    int rc = adopt && stamps_on(fd, flags) ? (*stamps = 1, RTUDP_OK)
                                           : turn_on_stamps(fd, want_hw, flags, stamps, why);
    if (rc != RTUDP_OK)
        return rc;
    c->tsflags = stamps_set(fd, *stamps, flags);
    c->sw_tx = (c->tsflags & SOF_TIMESTAMPING_TX_SOFTWARE) != 0 || (*stamps && on_ask);
    c->sw_rx = (c->tsflags & SOF_TIMESTAMPING_RX_SOFTWARE) != 0;
    return RTUDP_OK;
}

/* What fd can do besides stamps, each where the kernel has it: drop counts on
 * received packets, segmented sends, coalesced receives.  c->hw must be set: with
 * hardware stamps sends are never segmented. */
static void enable_counts_and_offloads(int fd, struct rtudp_net_caps *c)
{
    int one = 1;
    c->rxq_ovfl = setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) == 0;

    /* UDP_SEGMENT is a per-send cmsg: the socket option answering says the kernel
     * knows it.  GRO: the kernel may then hand over several same-sized datagrams
     * as one (recv_batch reports the segment size; the caller splits). */
    int seg = 0;
    socklen_t l = sizeof seg;
    c->gso = !c->hw && !rtudp_compat_forced("udp_segment") &&
             getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &l) == 0;
    c->gro = !rtudp_compat_forced("udp_gro") &&
             setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
}

static int set_up(int fd, int want_hw, int adopt, struct rtudp_net_caps *caps,
                  struct rtudp_check *why)
{
    struct rtudp_net_caps c;
    memset(&c, 0, sizeof c);
    c.phc_index = -1;
    if (fd < 0 || fd >= RTUDP_NET_MAX_FD)
        return rtudp_check_set(why, RTUDP_EINVAL, "fd %d: out of range [0, %d)", fd, RTUDP_NET_MAX_FD);
    int rc = check_udp_socket(fd, &c.family, why);
    if (rc != RTUDP_OK)
        return rc;

    /* hardware first: if it cannot be had, the socket stays as it was */
    if (want_hw) {
        rc = set_up_hw(fd, &c, why);
        if (rc != RTUDP_OK)
            return rc;
    }

    struct fd_state *st = fd_state(fd, true);
    if (!st)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: out of memory for its state", fd);

    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: O_NONBLOCK: %s", fd, strerror(errno));

    int stamps = 0;
    /* keys per send: a send then asks for its own stamp, or for none (stamps_send) */
    int on_ask = !want_hw && probe_tskey_cmsg();
    rc = set_up_stamps(fd, want_hw, on_ask, adopt, &c, &stamps, why);
    if (rc != RTUDP_OK)
        return rc;
    c.hw = want_hw != 0;
    enable_counts_and_offloads(fd, &c);

    c.tskey_cmsg = stamps && probe_tskey_cmsg(); /* keys mean nothing without stamps */
    if (adopt && stamps && !c.tskey_cmsg)
        return rtudp_check_set(why, RTUDP_EINVAL, "fd %d: this kernel keys TX stamps by the "
                               "socket's own count, which only a socket set up anew restarts",
                               fd);
    st->next_key = 0;
    st->use_cmsg = (uint32_t)c.tskey_cmsg;
    st->on_ask = (uint32_t)(stamps && on_ask);
    st->hw = (uint32_t)c.hw;
    st->gso = (uint32_t)c.gso;
    st->set_up = 1;
    rtudp_net_clockmap(); /* measure before the first packet needs it */
    if (caps)
        *caps = c;
    return RTUDP_OK;
}

int rtudp_net_setup(int fd, int want_hw, struct rtudp_net_caps *caps, struct rtudp_check *why)
{
    return set_up(fd, want_hw, 0, caps, why);
}

int rtudp_net_adopt(int fd, int want_hw, struct rtudp_net_caps *caps, struct rtudp_check *why)
{
    return set_up(fd, want_hw, 1, caps, why);
}

int rtudp_net_use_tskey_cmsg(int fd, int on)
{
    struct fd_state *st = fd_state(fd, false);
    if (!st || !st->set_up || (on && !probe_tskey_cmsg()))
        return RTUDP_EINVAL;
    int flags = 0;
    socklen_t l = sizeof flags;
    if (getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, &l) != 0)
        return RTUDP_ESYS;
    int stamped = (flags & SOF_TIMESTAMPING_OPT_ID) != 0;
    if (!on && stamped) {
        /* every send stamped, its key the kernel's counter, restarted with ours (see
         * rtudp_net_setup) */
        int zero = 0;
        flags |= SOF_TIMESTAMPING_TX_SOFTWARE;
        if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &zero, sizeof zero) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
            return RTUDP_ESYS;
    }
    if (on && stamped && !st->hw && (flags & SOF_TIMESTAMPING_TX_SOFTWARE)) {
        flags &= ~SOF_TIMESTAMPING_TX_SOFTWARE; /* each send asks (stamp_flags) */
        if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
            return RTUDP_ESYS;
    }
    st->use_cmsg = on != 0;
    st->on_ask = (uint32_t)(on && stamped && !st->hw);
    st->next_key = 0;
    return RTUDP_OK;
}

int rtudp_net_tx_stamps_off(int fd, uint32_t *tsflags)
{
    struct fd_state *st = fd_state(fd, false);
    if (!st || !st->set_up || !tsflags)
        return RTUDP_EINVAL;
    int flags = (int)(*tsflags & ~(uint32_t)(SOF_TIMESTAMPING_TX_SOFTWARE |
                                             SOF_TIMESTAMPING_TX_HARDWARE |
                                             SOF_TIMESTAMPING_OPT_TX_SWHW));
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) != 0)
        return RTUDP_ESYS;
    *tsflags = (uint32_t)flags;
    st->use_cmsg = 0; /* no key to give, no stamp to ask for */
    st->on_ask = 0;
    return RTUDP_OK;
}

void rtudp_net_forget(int fd)
{
    struct fd_state *st = fd_state(fd, false);
    if (st)
        memset(st, 0, sizeof *st);
}

/* ------------------------------------------------------------------ buffers */

/* the sysctl maximum (sysmax_path) is read only where it binds: when the forced size
 * is not permitted (no CAP_NET_ADMIN); a worker that may force reads no file per ADD */
static int size_one(int fd, int force_opt, int opt, uint64_t want, const char *sysmax_path,
                    uint64_t *sysmax, uint64_t *got, int *limited)
{
    /* the kernel doubles the value into an int: INT_MAX / 2 is the most it takes */
    int v = want > INT_MAX / 2 ? INT_MAX / 2 : (int)want;
    *limited = 0;
    if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) != 0) {
        if (errno != EPERM)
            return -errno;
        if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v) != 0)
            return -errno;
        *sysmax = rtudp_read_u64_file(sysmax_path);
        *limited = *sysmax && (uint64_t)v > *sysmax;
    }
    int now = 0;
    socklen_t l = sizeof now;
    if (getsockopt(fd, SOL_SOCKET, opt, &now, &l) != 0)
        return -errno;
    *got = (uint64_t)now;
    return 0;
}

int rtudp_net_size_buffers(int fd, uint64_t rcv_bytes, uint64_t snd_bytes,
                           struct rtudp_net_bufs *got, struct rtudp_check *why)
{
    struct rtudp_net_bufs b;
    memset(&b, 0, sizeof b);
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l) != 0)
        return rtudp_check_set(why, RTUDP_EINVAL, "fd %d: not a socket (%s)", fd, strerror(errno));
    b.rcvbuf = (uint64_t)v;
    l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0)
        b.sndbuf = (uint64_t)v;
    int e;
    if (rcv_bytes &&
        (e = size_one(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv_bytes, "/proc/sys/net/core/rmem_max",
                      &b.rmem_max, &b.rcvbuf, &b.rcv_limited)) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: SO_RCVBUF %llu: %s", fd,
                    (unsigned long long)rcv_bytes, strerror(-e));
    if (snd_bytes &&
        (e = size_one(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd_bytes, "/proc/sys/net/core/wmem_max",
                      &b.wmem_max, &b.sndbuf, &b.snd_limited)) != 0)
        return rtudp_check_set(why, RTUDP_ESYS, "fd %d: SO_SNDBUF %llu: %s", fd,
                    (unsigned long long)snd_bytes, strerror(-e));
    if (got)
        *got = b;
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ send */

/*
 * Whether a send call of n packets asks the kernel for TX stamps.  A stamp proves to a
 * successor which packets of a call left (txjournal.h); without one it sends the call's
 * packets again, so a call of one packet repeats at most that one.  Each stamp costs
 * the kernel an allocation and an error-queue entry, and us a read: a software-stamped
 * socket with explicit keys (an unstamped send cannot shift them) stamps only calls of
 * two or more, and a lone packet's departure is the clock at the call.  Counted keys
 * and hardware stamps (the NIC's time is what the user asked for) stamp every packet.
 */
static bool stamps_send(const struct fd_state *st, unsigned n)
{
    return n > 1 || !st->use_cmsg || st->hw;
}

/* c, filled as a socket-level control message of one u32 */
static void put_u32(struct cmsghdr *c, int type, uint32_t value)
{
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof value);
    memcpy(CMSG_DATA(c), &value, sizeof value);
}

/* after c in mh (whose control has room for it): with on_ask, the request for the
 * software TX stamp itself (stamp_flags); the control bytes it took */
static size_t ask_tx_stamp(struct msghdr *mh, struct cmsghdr *c, bool on_ask)
{
    if (!on_ask)
        return 0;
    put_u32(CMSG_NXTHDR(mh, c), SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE);
    return CMSG_SPACE(sizeof(uint32_t));
}

/* the first r of pkts went at now: their keys from key0 (the sends' stamps come back
 * under them), their send time and stamp flag; a stamped send moves the socket's key on */
static void note_sent(struct fd_state *st, struct rtudp_tx_pkt *pkts, int r, uint32_t key0,
                      int64_t now, bool stamp)
{
    for (int i = 0; i < r; i++) {
        pkts[i].tskey = key0 + (uint32_t)i;
        pkts[i].sent_ns = now;
        pkts[i].stamped = stamp;
    }
    if (stamp)
        st->next_key = key0 + (uint32_t)r;
}

/* one packet with no control message to carry: a sendto, which the kernel takes
 * without copying in a message header and its iovec (cheaper than a sendmmsg of one,
 * docs/measurements.md, "Send paths").  1, or -errno */
static int send_alone(int fd, struct fd_state *st, struct rtudp_tx_pkt *pkt,
                      const struct sockaddr *dst, socklen_t dst_len, bool stamp)
{
    ssize_t r = send_to(fd, pkt->data, pkt->len, MSG_DONTWAIT, dst, dst ? dst_len : 0);
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (r < 0)
        return -errno;
    note_sent(st, pkt, 1, st->next_key, now, stamp);
    return 1;
}

/* one sendmmsg of n <= RTUDP_NET_BATCH_MAX packets; count sent or -errno.  stamp: ask
 * for TX stamps (else a packet carries no control message: an unstamped send happens
 * only where the socket leaves TX stamps to the sends, stamps_send) */
static int send_chunk(int fd, struct fd_state *st, struct rtudp_tx_pkt *pkts, unsigned n,
                      const struct sockaddr *dst, socklen_t dst_len, bool stamp)
{
    struct mmsghdr mm[RTUDP_NET_BATCH_MAX];
    struct iovec iov[RTUDP_NET_BATCH_MAX];
    union {
        char buf[2 * CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[RTUDP_NET_BATCH_MAX];
    uint32_t key0 = st->next_key;
    if (n == 1 && !(st->use_cmsg && stamp))
        return send_alone(fd, st, pkts, dst, dst_len, stamp);
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = (void *)pkts[i].data;
        iov[i].iov_len = pkts[i].len;
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_name = (void *)dst;
        mm[i].msg_hdr.msg_namelen = dst ? dst_len : 0;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
#ifdef SCM_TS_OPT_ID
        if (st->use_cmsg && stamp) {
            struct msghdr *mh = &mm[i].msg_hdr;
            memset(&ctl[i], 0, sizeof ctl[i]);
            mh->msg_control = ctl[i].buf;
            mh->msg_controllen = sizeof ctl[i].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(mh);
            put_u32(c, SCM_TS_OPT_ID, key0 + i);
            mh->msg_controllen = CMSG_SPACE(sizeof(uint32_t)) + ask_tx_stamp(mh, c, st->on_ask);
        }
#else
        (void)ctl;
#endif
    }
    int r = send_mmsg(fd, mm, n, MSG_DONTWAIT);
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (r < 0)
        return -errno;
    note_sent(st, pkts, r, key0, now, stamp);
    return r;
}

int rtudp_net_send_batch(int fd, struct rtudp_tx_pkt *pkts, unsigned n,
                         const struct sockaddr *dst, socklen_t dst_len)
{
    struct fd_state *st = fd_state(fd, false);
    if (!st || !st->set_up || (n && !pkts)) {
        errno = EINVAL;
        return RTUDP_EINVAL;
    }
    bool stamp = stamps_send(st, n);
    unsigned done = 0;
    while (done < n) {
        unsigned k = n - done < RTUDP_NET_BATCH_MAX ? n - done : RTUDP_NET_BATCH_MAX;
        int r = send_chunk(fd, st, pkts + done, k, dst, dst_len, stamp);
        if (r < 0) {
            if (r == -EAGAIN || r == -EWOULDBLOCK || done > 0) {
                errno = -r;
                return (int)done;
            }
            errno = -r;
            return RTUDP_ESYS;
        }
        done += (unsigned)r;
        /* A short count hides why packet `done` did not go: Linux 6.18 drops the
         * error, some kernels park it in sk_err to fail a later send.  The next
         * round starts with that packet, so its own error (or the parked one,
         * consumed here) comes back as errno, or it goes if the cause passed. */
    }
    return (int)done;
}

int rtudp_net_send_gso(int fd, struct rtudp_tx_pkt *pkts, unsigned n,
                       const struct sockaddr *dst, socklen_t dst_len)
{
    struct fd_state *st = fd_state(fd, false);
    if (!st || !st->set_up || !st->gso || !pkts || n < 1 || n > RTUDP_NET_GSO_MAX) {
        errno = EINVAL;
        return RTUDP_EINVAL;
    }
    uint32_t seg = pkts[0].len;
    uint64_t total = 0;
    struct iovec iov[RTUDP_NET_GSO_MAX];
    for (unsigned i = 0; i < n; i++) {
        if (pkts[i].len != seg) {
            errno = EINVAL;
            return RTUDP_EINVAL;
        }
        iov[i].iov_base = (void *)pkts[i].data;
        iov[i].iov_len = seg;
        total += seg;
    }
    if (seg == 0 || seg > UINT16_MAX || total > RTUDP_NET_GSO_BYTES) {
        errno = EINVAL;
        return RTUDP_EINVAL;
    }
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t)) + 2 * CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh = {.msg_name = (void *)dst, .msg_namelen = dst ? dst_len : 0,
                        .msg_iov = iov, .msg_iovlen = n, .msg_control = ctl.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(uint16_t))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg16 = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &seg16, sizeof seg16);
    /* one send, one skb: the kernel gives it one TX stamp, so one key for all */
    uint32_t key = st->next_key;
#ifdef SCM_TS_OPT_ID
    if (st->use_cmsg) {
        mh.msg_controllen = sizeof ctl.buf;
        c = CMSG_NXTHDR(&mh, c);
        put_u32(c, SCM_TS_OPT_ID, key);
        mh.msg_controllen = CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(uint32_t)) +
                            ask_tx_stamp(&mh, c, st->on_ask);
    }
#endif
    ssize_t r;
    do {
        r = send_msg(fd, &mh, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (r < 0)
        return RTUDP_ESYS;
    for (unsigned i = 0; i < n; i++) {
        pkts[i].tskey = key;
        pkts[i].sent_ns = now;
        pkts[i].stamped = 1;
    }
    st->next_key = key + 1;
    return (int)n;
}

int rtudp_net_next_key(int fd, uint32_t *key)
{
    struct fd_state *st = fd_state(fd, false);
    if (!st || !st->set_up || !key)
        return RTUDP_EINVAL;
    *key = st->next_key;
    return RTUDP_OK;
}

/* ------------------------------------------------------------------ TX stamps */

#define ERRQ_BATCH 64

int rtudp_net_read_tx_stamps(int fd, void (*cb)(void *ctx, uint32_t tskey, int64_t mono_ns),
                             void *ctx)
{
    return rtudp_net_read_tx_stamps_n(fd, UINT32_MAX, cb, ctx);
}

int rtudp_net_read_tx_stamps_n(int fd, uint32_t expect,
                               void (*cb)(void *ctx, uint32_t tskey, int64_t mono_ns), void *ctx)
{
    struct mmsghdr mm[ERRQ_BATCH];
    union {
        char buf[CTL_ERRQ];
        struct cmsghdr align;
    } ctl[ERRQ_BATCH];
    struct rtudp_clockmap *map = rtudp_net_clockmap();
    int total = 0;
    uint64_t taken = 0; /* entries received, stamps or not */
    if (expect == 0)
        expect = 1;
    for (;;) {
        uint64_t left = expect - taken;
        unsigned vlen = left < ERRQ_BATCH ? (unsigned)left : ERRQ_BATCH;
        for (unsigned i = 0; i < vlen; i++) {
            memset(&mm[i], 0, sizeof mm[i]);
            mm[i].msg_hdr.msg_control = ctl[i].buf;
            mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
        }
        int r = recv_mmsg(fd, mm, vlen, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return total ? total : RTUDP_ESYS;
        }
        rtudp_clockmap_refresh(map, 0, 0);
        for (int i = 0; i < r; i++) {
            const struct msghdr *m = &mm[i].msg_hdr;
            int64_t ts[3] = {0, 0, 0};
            bool have_ts = false, have_key = false;
            uint32_t key = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
                if (parse_scm_ts(m, c, ts)) {
                    have_ts = true;
                } else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                           (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
                    struct sock_extended_err ee;
                    const void *d = cmsg_data_checked(m, c, sizeof ee);
                    if (!d)
                        continue;
                    memcpy(&ee, d, sizeof ee);
                    /* only the "sent" stamp: ICMP errors (IP_RECVERR set by someone)
                     * and other stamp types (SCHED/ACK) are not departures */
                    if (ee.ee_errno == ENOMSG && ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING &&
                        ee.ee_info == SCM_TSTAMP_SND) {
                        key = ee.ee_data;
                        have_key = true;
                    }
                }
            }
            if (have_ts && have_key && ts[0]) {
                if (cb)
                    cb(ctx, key, rtudp_clockmap_to_mono(map, ts[0]));
                total++;
            }
        }
        taken += (unsigned)r;
        if ((unsigned)r < vlen || taken >= expect)
            break;
    }
    return total;
}

/* ------------------------------------------------------------------ receive */

int rtudp_net_recv_batch(int fd, struct rtudp_rx_pkt *pkts, unsigned n)
{
    if (n && !pkts) {
        errno = EINVAL;
        return RTUDP_EINVAL;
    }
    if (n > RTUDP_NET_BATCH_MAX)
        n = RTUDP_NET_BATCH_MAX;
    if (n == 0)
        return 0;
    struct mmsghdr mm[RTUDP_NET_BATCH_MAX];
    struct iovec iov[RTUDP_NET_BATCH_MAX];
    union {
        char buf[CTL_RX];
        struct cmsghdr align;
    } ctl[RTUDP_NET_BATCH_MAX];
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = pkts[i].buf;
        iov[i].iov_len = pkts[i].cap;
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_name = &pkts[i].src;
        mm[i].msg_hdr.msg_namelen = sizeof pkts[i].src;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_control = ctl[i].buf;
        mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
    int r;
    do {
        /* MSG_TRUNC: msg_len is the datagram's real length, not what fit */
        r = recv_mmsg(fd, mm, n, MSG_DONTWAIT | MSG_TRUNC);
    } while (r < 0 && errno == EINTR);
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : RTUDP_ESYS;
    struct rtudp_clockmap *map = rtudp_net_clockmap();
    rtudp_clockmap_refresh(map, now, 0);
    for (int i = 0; i < r; i++) {
        struct rtudp_rx_pkt *p = &pkts[i];
        const struct msghdr *m = &mm[i].msg_hdr;
        p->wire_len = mm[i].msg_len;
        p->len = p->wire_len < p->cap ? p->wire_len : p->cap;
        p->flags = (m->msg_flags & MSG_TRUNC) || p->wire_len > p->cap ? RTUDP_RX_TRUNC : 0;
        p->src_len = m->msg_namelen <= sizeof p->src ? m->msg_namelen : sizeof p->src;
        p->drops = 0;
        p->gso_size = 0;
        p->rx_ns = now;
        p->hw_raw_ns = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
            int64_t ts[3] = {0, 0, 0};
            if (parse_scm_ts(m, c, ts)) {
                if (ts[0]) {
                    p->rx_ns = rtudp_clockmap_to_mono(map, ts[0]);
                    p->flags |= RTUDP_RX_KERNEL_TS;
                }
                if (ts[2]) {
                    p->hw_raw_ns = ts[2];
                    p->flags |= RTUDP_RX_HW_TS;
                }
            } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                const void *d = cmsg_data_checked(m, c, sizeof(int));
                int seg = 0;
                if (d)
                    memcpy(&seg, d, sizeof seg);
                /* several datagrams of seg bytes (the last may be shorter) */
                if (seg > 0 && (uint32_t)seg < p->wire_len)
                    p->gso_size = (uint32_t)seg;
            } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                const void *d = cmsg_data_checked(m, c, sizeof(uint32_t));
                if (d) {
                    memcpy(&p->drops, d, sizeof p->drops);
                    p->flags |= RTUDP_RX_DROPS;
                }
            }
        }
    }
    return r;
}

/* the block's remote address as a sockaddr; 0 when it has none we understand */
socklen_t rtudp_to_sockaddr(const struct rtudp_sockaddr *a, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (a->family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)out;
        s->sin_family = AF_INET;
        s->sin_port = htons(a->port);
        memcpy(&s->sin_addr, a->addr, 4);
        return sizeof *s;
    }
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(a->port);
        s->sin6_scope_id = a->scope_id;
        memcpy(&s->sin6_addr, a->addr, 16);
        return sizeof *s;
    }
    return 0;
}

/* a received datagram's source address in the layout's form (family 0: unknown) */
void rtudp_rx_source(const struct rtudp_rx_pkt *p, struct rtudp_sockaddr *a)
{
    memset(a, 0, sizeof *a);
    if (p->src.ss_family == AF_INET && p->src_len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&p->src;
        a->family = AF_INET;
        a->port = ntohs(s->sin_port);
        memcpy(a->addr, &s->sin_addr, 4);
    } else if (p->src.ss_family == AF_INET6 && p->src_len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&p->src;
        a->family = AF_INET6;
        a->port = ntohs(s->sin6_port);
        a->scope_id = s->sin6_scope_id;
        memcpy(a->addr, &s->sin6_addr, 16);
    }
}
