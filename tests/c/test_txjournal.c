/*
 * test_txjournal.c - the TX journal (csrc/worker/txjournal.c): a successor frees
 * exactly the in-flight records whose TX stamps prove them gone, and nothing a
 * scribbled journal names.  The end-to-end kill test is tests/test_fault_worker_kill.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netio.h"
#include "ring.h"
#include "txjournal.h"

#include "harness.h"

#define CAP 4096
#define NREC 6

struct fixture {
    void *mem;
    struct rtudp_mpsc m;
    struct rtudp_tx_journal *j;
    uint64_t pos[NREC];          /* ring position of record i ("r0", "r1", ...) */
};

static void setup(struct fixture *f)
{
    uint64_t fp = rtudp_mpsc_footprint(CAP);
    f->mem = aligned_alloc(64, fp);
    CHECK(f->mem);
    CHECK_EQ(rtudp_mpsc_init(f->mem, CAP), RTUDP_OK);
    CHECK_EQ(rtudp_mpsc_attach(&f->m, f->mem, fp, NULL), RTUDP_OK);
    f->j = calloc(1, sizeof *f->j);
    CHECK(f->j);
    for (int i = 0; i < NREC; i++) {
        char p[8];
        int n = snprintf(p, sizeof p, "r%d", i);
        CHECK_EQ(rtudp_mpsc_try_put(&f->m, p, (uint32_t)n, 0, 0), RTUDP_OK);
    }
    /* a consumer's read: positions as the worker's timers carry them */
    uint64_t cursor = f->m.ring->head;
    for (int i = 0; i < NREC; i++) {
        struct rtudp_tx_record *rec;
        uint32_t len;
        CHECK_EQ(rtudp_mpsc_next(&f->m, &cursor, &rec, &len), RTUDP_OK);
        f->pos[i] = cursor - align8(sizeof *rec + len);
    }
}

static void teardown(struct fixture *f)
{
    free(f->j);
    free(f->mem);
}

/* the payloads a consumer starting at head reads now, as "r0r2..." */
static void unsent(struct fixture *f, char *out, size_t cap)
{
    uint64_t cursor = f->m.ring->head;
    size_t used = 0;
    out[0] = 0;
    struct rtudp_tx_record *rec;
    uint32_t len;
    while (rtudp_mpsc_next(&f->m, &cursor, &rec, &len) == RTUDP_OK && used + len < cap) {
        memcpy(out + used, rec + 1, len);
        used += len;
        out[used] = 0;
    }
}

struct keyset {
    uint32_t keys[8];
    int n;
};

static int in_set(void *ctx, uint32_t key)
{
    const struct keyset *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (s->keys[i] == key)
            return 1;
    return 0;
}

/* recover f's journal as a successor whose TX stamps carried the keys of `stamped` */
static struct rtudp_txj_result recover(struct fixture *f, struct keyset *stamped)
{
    struct rtudp_txj_result r;
    rtudp_txj_recover_with(f->j, &f->m, in_set, stamped, &r);
    return r;
}

/* the payloads still in f's ring, in order, are `want` */
#define expect_unsent(f, want) AT_LINE(expect_unsent_(f, want))
static void expect_unsent_(struct fixture *f, const char *want)
{
    char got[64];
    unsent(f, got, sizeof got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "unsent: %s, expected %s\n", got, want);
    CHECK(strcmp(got, want) == 0);
}

/* sent in deadline order r3, r1, r2 with keys 100..102; stamps came for 100 and 101 */
static void test_stamped_records_are_not_sent_again(void)
{
    struct fixture f;
    setup(&f);
    uint64_t batch[3] = {f.pos[3], f.pos[1], f.pos[2]};
    rtudp_txj_begin(f.j, 100, 0, batch, 3);
    CHECK_EQ(f.j->count, 3);
    struct keyset stamped = {{100, 101}, 2};
    struct rtudp_txj_result r = recover(&f, &stamped);
    CHECK_EQ(r.journalled, 3);
    CHECK_EQ(r.left, 2);
    CHECK_EQ(r.resent, 1);
    CHECK_EQ(r.invalid, 0);
    expect_unsent(&f, "r0r2r4r5");
    CHECK_EQ(f.j->count, 0);
    CHECK_EQ(f.j->restart_left, 2);
    CHECK_EQ(f.j->restart_resent, 1);
    /* a second successor finds nothing to do */
    r = recover(&f, &stamped);
    CHECK_EQ(r.journalled, 0);
    expect_unsent(&f, "r0r2r4r5");
    teardown(&f);
}

/* a send that ended normally leaves nothing for a successor */
static void test_ended_send_is_not_recovered(void)
{
    struct fixture f;
    setup(&f);
    rtudp_txj_begin(f.j, 7, 0, f.pos, 2);
    rtudp_txj_end(f.j);
    struct keyset stamped = {{7, 8}, 2};
    struct rtudp_txj_result r = recover(&f, &stamped);
    CHECK_EQ(r.journalled, 0);
    expect_unsent(&f, "r0r1r2r3r4r5");
    teardown(&f);
}

/* a GSO send: every record under key0; its one stamp proves them all gone */
static void test_one_key_for_a_gso_send(void)
{
    struct fixture f;
    setup(&f);
    rtudp_txj_begin(f.j, 42, 1, f.pos + 1, 3);
    struct keyset stamped = {{42}, 1};
    struct rtudp_txj_result r = recover(&f, &stamped);
    CHECK_EQ(r.left, 3);
    CHECK_EQ(r.resent, 0);
    expect_unsent(&f, "r0r4r5");
    /* unstamped: all three again */
    struct fixture g;
    setup(&g);
    rtudp_txj_begin(g.j, 42, 1, g.pos + 1, 3);
    struct keyset other = {{43}, 1};
    r = recover(&g, &other);
    CHECK_EQ(r.left, 0);
    CHECK_EQ(r.resent, 3);
    teardown(&f);
    teardown(&g);
}

/* keys wrap at 2^32 like the kernel's */
static void test_keys_wrap(void)
{
    struct fixture f;
    setup(&f);
    rtudp_txj_begin(f.j, UINT32_MAX, 0, f.pos + 4, 2);
    struct keyset stamped = {{UINT32_MAX, 0}, 2};
    struct rtudp_txj_result r = recover(&f, &stamped);
    CHECK_EQ(r.left, 2);
    expect_unsent(&f, "r0r1r2r3");
    teardown(&f);
}

/* a journal scribbled over names nothing the successor acts on */
static void test_scribbled_journal_marks_nothing(void)
{
    struct fixture f;
    setup(&f);
    f.j->key0 = 0;
    for (uint32_t i = 0; i < RTUDP_TX_JOURNAL_MAX; i++)
        f.j->pos[i] = f.pos[1] + 3 + i * 1000003ull; /* misaligned, mid-record, far away */
    f.j->pos[5] = f.pos[1] + 8;                       /* aligned, inside record 1 */
    f.j->pos[6] = f.m.ring->tail;                     /* not yet written */
    f.j->count = 1000;                                /* beyond the array */
    struct keyset stamped = {{0, 1, 2, 3, 4, 5, 6, 7}, 8};
    struct rtudp_txj_result r = recover(&f, &stamped);
    CHECK_EQ(r.journalled, RTUDP_TX_JOURNAL_MAX);
    CHECK_EQ(r.left, 0);
    CHECK_EQ(r.invalid, RTUDP_TX_JOURNAL_MAX);
    CHECK_EQ(f.j->count, 0);
    expect_unsent(&f, "r0r1r2r3r4r5");
    /* the same record twice is acted on once */
    uint64_t twice[2] = {f.pos[2], f.pos[2]};
    rtudp_txj_begin(f.j, 0, 0, twice, 2);
    r = recover(&f, &stamped);
    CHECK_EQ(r.left, 1);
    CHECK_EQ(r.invalid, 1);
    teardown(&f);
}

/* skip the test when this kernel refuses software TX stamps on a UDP socket (asked of
 * the kernel itself: what netio.c reports is under test) */
static void need_sw_tx_stamps(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(fd >= 0);
    int want = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE, got = 0;
    socklen_t l = sizeof got;
    int rc = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &want, sizeof want);
    int e = errno;
    if (rc == 0)
        CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &got, &l), 0);
    close(fd);
    if (rc != 0)
        SKIP("this kernel gives no software TX stamps (SO_TIMESTAMPING: %s)", strerror(e));
    if (!(got & SOF_TIMESTAMPING_TX_SOFTWARE))
        SKIP("this kernel gives no software TX stamps (SO_TIMESTAMPING reads back 0x%x)",
             (unsigned)got);
}

/* a receiving socket on 127.0.0.1 (its address in *a) and a sending one set up as a
 * worker sets up its channel sockets (*caps) */
struct lo_pair {
    int rx, tx;
    struct sockaddr_in a;
    socklen_t al;
    struct rtudp_net_caps caps;
};

static void lo_pair_open(struct lo_pair *p)
{
    p->rx = socket(AF_INET, SOCK_DGRAM, 0);
    p->tx = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(p->rx >= 0 && p->tx >= 0);
    p->a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    p->al = sizeof p->a;
    CHECK_EQ(bind(p->rx, (struct sockaddr *)&p->a, p->al), 0);
    CHECK_EQ(getsockname(p->rx, (struct sockaddr *)&p->a, &p->al), 0);
    struct rtudp_check why = {0};
    CHECK_EQ(rtudp_net_setup(p->tx, 0, &p->caps, &why), RTUDP_OK);
}

/* the successor: the same sending socket, set up again */
static void lo_pair_set_up_again(struct lo_pair *p)
{
    struct rtudp_check why = {0};
    CHECK_EQ(rtudp_net_setup(p->tx, 0, &p->caps, &why), RTUDP_OK);
}

/* the successor: the same sending socket set up again recovers the journal of f, and
 * finds what it says */
#define expect_recovered(p, f, journalled_, left_, resent_, unsent_) \
    AT_LINE(expect_recovered_(p, f, journalled_, left_, resent_, unsent_))
static void expect_recovered_(struct lo_pair *p, struct fixture *f, uint32_t journalled,
                              uint32_t left, uint32_t resent, const char *unsent)
{
    lo_pair_set_up_again(p);
    struct rtudp_txj_result r;
    rtudp_txj_recover(f->j, &f->m, p->tx, &r);
    CHECK_EQ(r.journalled, journalled);
    CHECK_EQ(r.left, left);
    CHECK_EQ(r.resent, resent);
    expect_unsent(f, unsent);
}

static void lo_pair_close(struct lo_pair *p)
{
    rtudp_net_forget(p->tx);
    close(p->rx);
    close(p->tx);
}

/* end to end on a loopback socket: the worker "dies" right after the send call
 * (the journal still open, nothing marked); the stamps on the error queue prove
 * which packets left */
static void test_recover_from_socket_stamps(void)
{
    need_sw_tx_stamps();
    struct lo_pair p;
    lo_pair_open(&p);
    CHECK(p.caps.sw_tx); /* the kernel gives them: netio.c must turn them on */
    struct fixture f;
    setup(&f);
    /* earlier sends whose stamps the dead worker had read already (a lone packet,
     * which may go unstamped and so keyless, and a pair) */
    struct rtudp_tx_pkt first[2] = {{.data = "x", .len = 1}, {.data = "y", .len = 1}};
    CHECK_EQ(rtudp_net_send_batch(p.tx, first, 1, (struct sockaddr *)&p.a, p.al), 1);
    CHECK_EQ(rtudp_net_send_batch(p.tx, first, 2, (struct sockaddr *)&p.a, p.al), 2);
    rtudp_net_read_tx_stamps(p.tx, NULL, NULL);
    /* the batch in flight: r2, r0, r5 journalled, only the first two sent */
    uint64_t batch[3] = {f.pos[2], f.pos[0], f.pos[5]};
    uint32_t key0;
    CHECK_EQ(rtudp_net_next_key(p.tx, &key0), RTUDP_OK);
    CHECK_EQ(key0, first[1].tskey + 1);
    rtudp_txj_begin(f.j, key0, 0, batch, 3);
    struct rtudp_tx_pkt pk[2] = {{.data = "r2", .len = 2}, {.data = "r0", .len = 2}};
    CHECK_EQ(rtudp_net_send_batch(p.tx, pk, 2, (struct sockaddr *)&p.a, p.al), 2);
    expect_recovered(&p, &f, 3, 2, 1, "r1r3r4r5");
    teardown(&f);
    lo_pair_close(&p);
}

/* a lone packet asks for no stamp (netio.h): journalled under the socket's next key,
 * which no stamp carries, it is counted as sent again, and a stamped pair sent before
 * it still proves nothing of it */
static void test_lone_packet_in_flight_is_resent(void)
{
    need_sw_tx_stamps();
    struct lo_pair p;
    lo_pair_open(&p);
    if (!p.caps.tskey_cmsg) {
        lo_pair_close(&p);
        SKIP("this kernel counts TX-stamp keys (no SCM_TS_OPT_ID): a lone packet is "
             "stamped there");
    }
    struct fixture f;
    setup(&f);
    struct rtudp_tx_pkt pair[2] = {{.data = "p", .len = 1}, {.data = "q", .len = 1}};
    CHECK_EQ(rtudp_net_send_batch(p.tx, pair, 2, (struct sockaddr *)&p.a, p.al), 2);
    CHECK(pair[0].stamped && pair[1].stamped);
    uint32_t key0;
    CHECK_EQ(rtudp_net_next_key(p.tx, &key0), RTUDP_OK);
    uint64_t lone[1] = {f.pos[3]};
    rtudp_txj_begin(f.j, key0, 0, lone, 1);
    struct rtudp_tx_pkt pk = {.data = "r3", .len = 2};
    CHECK_EQ(rtudp_net_send_batch(p.tx, &pk, 1, (struct sockaddr *)&p.a, p.al), 1);
    CHECK_EQ(pk.stamped, 0);
    CHECK_EQ(pk.tskey, key0);
    /* the pair's stamps are on the queue, none of the lone packet's */
    expect_recovered(&p, &f, 1, 0, 1, "r0r1r2r3r4r5");
    teardown(&f);
    lo_pair_close(&p);
}

static const struct test tests[] = {
    T(test_stamped_records_are_not_sent_again),
    T(test_ended_send_is_not_recovered),
    T(test_one_key_for_a_gso_send),
    T(test_keys_wrap),
    T(test_scribbled_journal_marks_nothing),
    T(test_recover_from_socket_stamps),
    T(test_lone_packet_in_flight_is_resent),
};

HARNESS_MAIN(tests)
