/* sendpath_bench.h - what each way of sending a group of due datagrams costs the
 * sending thread: send(), sendmmsg and io_uring, on K sockets or on one
 * (`rtudp bench sendpath`). */
#ifndef RTUDP_SENDPATH_BENCH_H
#define RTUDP_SENDPATH_BENCH_H

#include <stdint.h>

/* BEGIN CDEF */
/* the ways a group of K datagrams leaves (bit i of rtudp_sendpath_config.paths) */
#define RTUDP_SENDPATH_SEND 0          /* K x send() (sendmsg() when a key cmsg rides along) */
#define RTUDP_SENDPATH_SENDMMSG1 1     /* K x sendmmsg() of 1: the worker's path, a socket a call */
#define RTUDP_SENDPATH_SENDMMSGK 2     /* one sendmmsg() of K: only when the K share one socket */
#define RTUDP_SENDPATH_URING_SENDMSG 3 /* one io_uring_enter: K IORING_OP_SENDMSG, K CQEs reaped */
#define RTUDP_SENDPATH_URING_FIXED 4   /* the same on registered files (IOSQE_FIXED_FILE) */
#define RTUDP_SENDPATH_URING_SEND 5    /* K IORING_OP_SEND: no msghdr, so only without stamps */
#define RTUDP_SENDPATH_PATHS 6
#define RTUDP_SENDPATH_MAX_K 64
#define RTUDP_SENDPATH_MAX_ROUNDS 32

struct rtudp_sendpath_config {
    uint32_t k;       /* datagrams a group, 1..RTUDP_SENDPATH_MAX_K */
    uint32_t sockets; /* sending sockets: k (one datagram each) or 1 (all k on it) */
    uint32_t size;    /* payload bytes, 16..1472 */
    int32_t stamps;   /* nonzero: SO_TIMESTAMPING on the sending sockets as the worker sets it */
    uint32_t groups;  /* groups a path sends a round, >= 1 */
    uint32_t rounds;  /* timed rounds, 1..RTUDP_SENDPATH_MAX_ROUNDS (after one untimed) */
    uint32_t paths;   /* bit mask of RTUDP_SENDPATH_* to run */
};

struct rtudp_sendpath_result {
    /* per path and round: the calling thread's CPU time and the wall time spent sending */
    int64_t cpu_ns[6][32];
    int64_t wall_ns[6][32];
    uint64_t sent[6];     /* datagrams the kernel took, timed rounds only */
    uint64_t received[6]; /* of them, read back from the receivers */
    uint64_t stamped[6];  /* TX stamps read from the error queues (stamps only) */
    uint64_t calls[6];    /* system calls made to send them */
    int32_t error[6];     /* 0, or the -errno that stopped the path */
    int32_t ran[6];       /* 1: the path was measured */
    int32_t uring_errno;  /* 0: io_uring works here; else why not (an errno value) */
    int32_t uring_built;  /* 0: built without <linux/io_uring.h> */
    int32_t files_errno;  /* 0, or why IORING_REGISTER_FILES failed (no fixed-file path) */
    uint32_t uring_flags; /* IORING_SETUP_* flags the ring was made with */
    char uring_mode[80];  /* the same, named ("SUBMIT_ALL|SINGLE_ISSUER|..."), NUL-ended */
    int32_t key_cmsg;     /* stamps: each datagram carries its key (SCM_TS_OPT_ID) */
    int32_t stamps_on;    /* stamps were asked for and the kernel took SO_TIMESTAMPING */
    uint32_t window;      /* groups sent between two clock reads (receivers drained between) */
    int64_t rcvbuf;       /* receive buffer each receiver (and sender) got, bytes */
};

/*
 * Opens cfg->sockets sending sockets on 127.0.0.1, each connected to its own receiving
 * socket there, and sends cfg->groups groups of cfg->k datagrams a round by every path
 * in cfg->paths that the layout allows, for one untimed round and then cfg->rounds
 * timed ones; the paths take turns within a round and each round starts one path
 * later.  Only the sends are timed: receivers and error queues are drained between
 * timed windows of `window` groups, and at the end every datagram and stamp is
 * counted.  A path io_uring cannot run on leaves ran[path] = 0 and says why in
 * uring_errno.  Everything it opens it closes.  Runs on the calling thread (io_uring
 * with SINGLE_ISSUER).  Returns 0, or -errno when the sockets cannot be set up or an
 * argument is out of range (-EINVAL).
 */
int rtudp_sendpath_measure(const struct rtudp_sendpath_config *cfg,
                           struct rtudp_sendpath_result *out);
/* END CDEF */

#endif
