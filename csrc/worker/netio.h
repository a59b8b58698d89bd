/*
 * netio.h - the worker's socket I/O on UDP sockets the supervisor created and bound.
 *
 * Lifecycle: rtudp_net_setup(fd) once per socket (non-blocking, timestamping, drop
 * counts; resets the socket's TX timestamp key counter) -> rtudp_net_send_batch /
 * rtudp_net_recv_batch / rtudp_net_read_tx_stamps in the loop.  The worker must
 * drain TX stamps regularly: they wait on the socket's error queue, which counts
 * against its receive buffer (a full buffer drops stamps, not data) and keeps
 * poll() reporting POLLERR until read.
 *
 * Times are CLOCK_MONOTONIC ns.  The kernel stamps in CLOCK_REALTIME; those are
 * converted with one per-process rtudp_clockmap (rtudp_net_clockmap()).
 *
 * One thread at a time per fd (the per-fd key counter is not locked).
 */
#ifndef RTUDP_NETIO_H
#define RTUDP_NETIO_H

#include <stdint.h>
#include <sys/socket.h>

#include "compat.h" /* what glibc 2.28 lacks (the wheels) */
#include "ring.h" /* result codes, struct rtudp_check */

/* packets per sendmmsg / recvmmsg call (the kernel's own cap is UIO_MAXIOV, 1024);
 * send_batch loops over larger n, recv_batch fills at most this many */
#define RTUDP_NET_BATCH_MAX 256
/* fds at or above this cannot be set up (per-fd state lives in a fixed table) */
#define RTUDP_NET_MAX_FD (1 << 20)

/* ---- REALTIME -> MONOTONIC ---- */

/*
 * offset_ns = CLOCK_REALTIME - CLOCK_MONOTONIC, measured by reading MONOTONIC,
 * REALTIME, MONOTONIC a few times and keeping the tightest bracket; the estimate is
 * the bracket's midpoint, so its error is at most bound_ns = half its width
 * (rounded up).  The true offset changes only when CLOCK_REALTIME is stepped
 * (clock_settime, settimeofday, adjtimex ADJ_SETOFFSET, a leap second): NTP
 * slewing changes the rate of both clocks alike.  So a converted stamp is within
 * bound_ns of the truth, except for up to RTUDP_CLOCKMAP_MAX_AGE_NS after a step
 * (until the next refresh), and for stamps taken before a step but converted after.
 */
struct rtudp_clockmap {
    int64_t offset_ns;    /* REALTIME - MONOTONIC */
    int64_t bound_ns;     /* |error| of offset_ns, from the bracket */
    int64_t refreshed_ns; /* MONOTONIC time of the last refresh */
    uint64_t refreshes;
};

#define RTUDP_CLOCKMAP_MAX_AGE_NS 100000000LL /* refresh at most this often unless forced */
#define RTUDP_CLOCKMAP_TRIES 5                /* brackets per refresh */

/* the map netio converts with (refreshed on its own; never NULL) */
struct rtudp_clockmap *rtudp_net_clockmap(void);
/* measure now */
void rtudp_clockmap_init(struct rtudp_clockmap *m);
/* re-measure when older than RTUDP_CLOCKMAP_MAX_AGE_NS, or always when force;
 * now_mono is a fresh CLOCK_MONOTONIC read (0: read it here).  1 if it measured. */
int rtudp_clockmap_refresh(struct rtudp_clockmap *m, int64_t now_mono, int force);
int64_t rtudp_clockmap_to_mono(const struct rtudp_clockmap *m, int64_t realtime_ns);

/* ---- setup ---- */

struct rtudp_net_caps {
    uint32_t tsflags;  /* SOF_TIMESTAMPING_* now set on the socket (read back) */
    int family;        /* AF_INET or AF_INET6 */
    int sw_tx;         /* software TX stamps requested */
    int sw_rx;         /* software RX stamps requested */
    int hw;            /* hardware TX+RX stamps enabled on ifname */
    int phc_index;     /* the interface's PTP clock when hw, else -1 */
    int rxq_ovfl;      /* SO_RXQ_OVFL on: rx packets carry the drop count */
    int tskey_cmsg;    /* keys set per packet (SCM_TS_OPT_ID, Linux >= 6.13); else
                          the kernel's OPT_ID counter, mirrored by netio */
    int gso;           /* rtudp_net_send_gso works (UDP_SEGMENT; never with hw stamps) */
    int gro;           /* UDP_GRO on: a receive may carry several datagrams (gso_size) */
    char ifname[16];   /* interface of the bound address, when hw was asked for */
};

/*
 * Make fd non-blocking and turn on software TX/RX timestamps with OPT_ID keys and
 * OPT_TSONLY (the error queue carries no copy of the payload), and SO_RXQ_OVFL.
 * want_hw: also hardware stamps, which needs the socket bound to one interface
 * (an address or SO_BINDTODEVICE) whose NIC can stamp every packet; it is
 * configured with SIOCSHWTSTAMP (TX on, RX filter ALL; CAP_NET_ADMIN) unless it
 * already is.  That setting is the NIC's, shared with every other user of it.
 * When anything for want_hw fails, the socket is left untouched and why->msg
 * names the fd, interface and reason.  Resets the fd's TX key counter to 0.
 */
int rtudp_net_setup(int fd, int want_hw, struct rtudp_net_caps *caps, struct rtudp_check *why);
/* As rtudp_net_setup, for a socket that another worker set up and still sends on:
 * nothing that worker relies on changes meanwhile.  Stamps already on as wanted stay on
 * (turned off for a moment, its sends with their own stamp keys would fail), and its key
 * counter is not reset: RTUDP_EINVAL where the kernel cannot key each send's stamps
 * (SCM_TS_OPT_ID), whose counter only a new setup restarts. */
int rtudp_net_adopt(int fd, int want_hw, struct rtudp_net_caps *caps, struct rtudp_check *why);

struct rtudp_net_bufs {
    uint64_t rcvbuf;       /* kernel's accounting limit now (getsockopt: twice what
                              was set, covering per-packet overhead) */
    uint64_t sndbuf;
    uint64_t rmem_max;     /* net.core.rmem_max / wmem_max where they bind (else 0) */
    uint64_t wmem_max;
    int rcv_limited;       /* 1: the request was clipped to net.core.rmem_max
                              (no CAP_NET_ADMIN for SO_RCVBUFFORCE) */
    int snd_limited;       /* same for net.core.wmem_max */
};

/*
 * Ask for rcv_bytes / snd_bytes (setsockopt values, 0 = leave as is) with
 * SO_RCVBUFFORCE / SO_SNDBUFFORCE, or SO_RCVBUF / SO_SNDBUF up to the sysctl
 * maximum when not permitted.  got reports the result; a clipped request is not an
 * error (the caller warns, naming the sysctl in got->*_limited).
 */
int rtudp_net_size_buffers(int fd, uint64_t rcv_bytes, uint64_t snd_bytes,
                           struct rtudp_net_bufs *got, struct rtudp_check *why);

/* Before closing a socket: its fd number no longer sends until set up again. */
void rtudp_net_forget(int fd);

/* Choose how fd's keys reach the kernel (after setup): on = per packet with
 * SCM_TS_OPT_ID (RTUDP_EINVAL where the kernel lacks it), off = mirror the
 * kernel's counter.  Setup picks "on" when it can; this is for tests and
 * diagnosis.  Resets the fd's keys to 0 (and the kernel's, for "off"). */
int rtudp_net_use_tskey_cmsg(int fd, int on);

/* No TX stamps on fd from now on (after setup): its flags lose the TX ones, and its
 * sends carry no stamp request.  *tsflags: the flags it has, then those it has now.
 * RTUDP_EINVAL for an fd not set up, RTUDP_ESYS when the kernel refuses. */
int rtudp_net_tx_stamps_off(int fd, uint32_t *tsflags);

/* ---- send ---- */

struct rtudp_tx_pkt {
    const void *data;
    uint32_t len;
    uint32_t tskey;   /* out: the key its TX stamp will carry */
    int64_t sent_ns;  /* out: CLOCK_MONOTONIC just after the send call */
    uint32_t stamped; /* out: a TX stamp keyed tskey will come (rtudp_net_send_batch) */
};

/*
 * Send n packets to dst (NULL for a connected socket) with one sendmmsg per
 * RTUDP_NET_BATCH_MAX.  Returns how many went (0..n); fewer than n means the next
 * one did not: errno is EAGAIN (buffer full) or that packet's own error (e.g.
 * EMSGSIZE; found by trying it once more, so no stale error fails a later send).  A negative
 * RTUDP_E* code when the first packet failed for other reasons than EAGAIN
 * (errno says why; ECONNREFUSED on a connected socket reports an earlier ICMP
 * error and consumes it, so a retry may succeed).  Only sent packets get a key.
 * TX stamps: a call of two or more asks for them; a call of one only where keys are
 * counted or the socket stamps in hardware (a lone packet a successor sends again is
 * at most one duplicate, and unstamped it costs the kernel no error-queue entry): its
 * `stamped` says, and an unstamped packet's key is left for the next stamped one.
 */
int rtudp_net_send_batch(int fd, struct rtudp_tx_pkt *pkts, unsigned n,
                         const struct sockaddr *dst, socklen_t dst_len);

/*
 * Send n (1..RTUDP_NET_GSO_MAX) packets of the same length, at most
 * RTUDP_NET_GSO_BYTES together, as one UDP_SEGMENT send: one system call and one
 * trip through the stack for all of them; they leave as n datagrams.  All get the
 * same TX-stamp key (the kernel stamps the send once).  Returns n, or a negative
 * code with errno (EAGAIN: buffer full; EINVAL/EMSGSIZE/EIO: the kernel or device
 * cannot segment these, send them one by one instead).  RTUDP_EINVAL when the
 * socket has no caps.gso or the packets do not qualify.
 */
#define RTUDP_NET_GSO_MAX 64         /* segments per send (UDP_MAX_SEGMENTS) */
#define RTUDP_NET_GSO_BYTES 65000    /* payload per send: one IP datagram's worth */
int rtudp_net_send_gso(int fd, struct rtudp_tx_pkt *pkts, unsigned n,
                       const struct sockaddr *dst, socklen_t dst_len);

/* The key the next packet sent on fd will carry (its TX stamp's): packets sent by
 * one rtudp_net_send_batch call get consecutive keys from it.  For a journal
 * written before the send.  RTUDP_EINVAL when fd is not set up. */
int rtudp_net_next_key(int fd, uint32_t *key);

/*
 * Drain the error queue: cb(ctx, key, departure) for every software TX stamp, in
 * CLOCK_MONOTONIC.  Hardware-only TX stamps (raw PHC time) and other errors are
 * skipped.  Returns how many cb calls, or a negative code (errno) on a failure
 * other than an empty queue.
 */
int rtudp_net_read_tx_stamps(int fd, void (*cb)(void *ctx, uint32_t tskey, int64_t mono_ns),
                             void *ctx);
/* the same, but reads no more than about `expect` entries (the stamps awaited; at
 * least 1): a channel that sent one packet since its last read then costs one
 * receive, not that and a second that finds the queue empty.  What it leaves waits
 * in the queue for the next read. */
int rtudp_net_read_tx_stamps_n(int fd, uint32_t expect,
                               void (*cb)(void *ctx, uint32_t tskey, int64_t mono_ns), void *ctx);

/* ---- receive ---- */

#define RTUDP_RX_TRUNC 0x1     /* datagram was longer than cap: len = cap bytes kept */
#define RTUDP_RX_KERNEL_TS 0x2 /* rx_ns is the kernel's software stamp; else a clock
                                  read just after recvmmsg returned */
#define RTUDP_RX_HW_TS 0x4     /* hw_raw_ns is set */
#define RTUDP_RX_DROPS 0x8     /* drops came with the packet (the kernel sends it only
                                  once it is non-zero; without it drops is 0) */

struct rtudp_rx_pkt {
    void *buf;                   /* in: where the payload goes */
    uint32_t cap;                /* in: bytes at buf */
    uint32_t len;                /* out: bytes stored (<= cap) */
    uint32_t wire_len;           /* out: the datagram's full length */
    uint32_t flags;              /* out: RTUDP_RX_* */
    uint32_t drops;              /* out: socket's total drops when it was queued */
    uint32_t gso_size;           /* out: 0, or (UDP_GRO) the datagram is several of this
                                    size back to back, the last one maybe shorter */
    socklen_t src_len;           /* out */
    int64_t rx_ns;               /* out: CLOCK_MONOTONIC */
    int64_t hw_raw_ns;           /* out: raw hardware stamp (PHC time), else 0 */
    struct sockaddr_storage src; /* out */
};

/* One recvmmsg (MSG_DONTWAIT) of up to min(n, RTUDP_NET_BATCH_MAX) datagrams.
 * Returns how many (0 when none waits) or a negative code (errno says why; on a
 * connected socket ECONNREFUSED reports an ICMP error from the peer, once). */
int rtudp_net_recv_batch(int fd, struct rtudp_rx_pkt *pkts, unsigned n);

/* ---- addresses ---- */

/* an address of the layout (a channel block's, a kind area's) as a sockaddr; 0 when
 * its family is none we know */
socklen_t rtudp_to_sockaddr(const struct rtudp_sockaddr *a, struct sockaddr_storage *out);
/* a received datagram's source address in the layout's form (family 0: unknown) */
void rtudp_rx_source(const struct rtudp_rx_pkt *p, struct rtudp_sockaddr *a);

#endif /* RTUDP_NETIO_H */
