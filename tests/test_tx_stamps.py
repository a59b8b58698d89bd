"""TX stamps under a backlog: every packet a worker sends in one go gets its kernel
stamp, however many wait.  The journal a successor reads after a kill frees only what
a stamp proves gone (the rest goes again), and the lateness histogram is timed by
them: a stamp the kernel drops is a duplicate after a kill and an untimed packet."""
from __future__ import annotations

import os
import signal
import socket
import time

import rtudp

from stress_harness import channel_worker_pid
from waiting import wait_for

BACKLOG = 3000          # past the default error queue's ~255 stamps many times over


def test_a_backlog_sent_after_a_stall_is_stamped_in_full(rtudp_pool: rtudp.Pool) -> None:
    """3000 sends with past deadlines, queued while the channel's worker is stopped, leave
    in batches of up to 256 once it runs again: all are sent, each with its own kernel
    TX stamp."""
    pool = rtudp_pool
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sink.bind(("127.0.0.1", 0))
        tx = pool.open_channel("stamps_tx", remote=sink.getsockname(), direction=0,
                               capacity=1 << 20, max_datagram=64)
        wait_for(lambda: channel_worker_pid(pool, tx), 30)
        pid = channel_worker_pid(pool, tx)[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            # past deadlines, each its own: no two may leave as one GSO send (one stamp)
            due = time.monotonic_ns() - BACKLOG * 1000
            for i in range(BACKLOG):
                tx.send(i.to_bytes(4, "little"), at_ns=due + i * 1000)
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: tx.stats()["tx_packets"] >= BACKLOG, 30)
        # a stamp is read at the latest when its wait times out
        wait_for(lambda: tx.lateness().count >= BACKLOG, 30)
        st = tx.stats()
        assert st["tx_packets"] == BACKLOG and st["tx_errors"] == 0, st
        assert st["tx_kernel_stamped"] == BACKLOG, \
            f"{BACKLOG - st['tx_kernel_stamped']} of {BACKLOG} sends lost their TX stamp: {st}"
