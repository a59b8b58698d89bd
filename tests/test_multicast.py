"""Multicast channels: join a group on receive; TTL and loopback options on send.

Multicast never leaves this machine: each test runs its pool in a network namespace
of its own with a veth pair as its only link and the multicast routes on it (the
host's loopback has no MULTICAST flag, and nothing may go out on a real interface).  Needs root and the ``ip`` command; without them the tests
skip and say why.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import new_shm_name

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="multicast tests need root and the `ip` command to make a network namespace")

CHILD = textwrap.dedent("""
    import json, socket, sys, time
    import rtudp
    from fake_worker import worker_argv

    pool_name, family, loop = sys.argv[1], sys.argv[2], sys.argv[3] == "loop"
    group = "239.7.7.7" if family == "4" else "ff05::7:7"
    any_ = "0.0.0.0" if family == "4" else "::"
    v0 = "10.9.0.1" if family == "4" else "fd00::1"   # the sender's interface address
    out = {}
    with rtudp.Pool(pool_name, worker=worker_argv()) as pool:
        r1 = pool.open_channel("r1", local=(group, 0), direction=1)
        port = r1.local[1]
        r2 = pool.open_channel("r2", local=(group, port), direction=1)   # a second member
        tx = pool.open_channel("tx", local=(v0, 0), remote=(group, port), direction=0,
                               multicast_ttl=3, multicast_loop=loop)
        sock = pool._table.find("tx").sock.sock  # what the kernel was told
        lvl = socket.IPPROTO_IP if family == "4" else socket.IPPROTO_IPV6
        out["ttl"] = sock.getsockopt(lvl, socket.IP_MULTICAST_TTL if family == "4"
                                     else socket.IPV6_MULTICAST_HOPS)
        out["loop"] = sock.getsockopt(lvl, socket.IP_MULTICAST_LOOP if family == "4"
                                      else socket.IPV6_MULTICAST_LOOP)
        for i in range(50):
            tx.send(b"g%d" % i)
        for r in (r1, r2):
            got = []
            try:
                while len(got) < 50:
                    got.append(r.recv(timeout=1.0 if loop else 0.5).data.decode())
            except TimeoutError:
                pass
            out[r.name] = got
        try:
            pool.open_channel("bad", local=(any_, 0), remote=(group, port), multicast_ttl=256)
        except ValueError as exc:
            out["bad_ttl"] = str(exc)
        try:
            pool.open_channel("bad", local=(any_, 0), remote=(group, port), multicast_loop=1)
        except TypeError as exc:
            out["bad_loop"] = str(exc)
    print(json.dumps(out))
""")


@pytest.fixture
def netns():
    """A network namespace whose only link is a veth pair (v0 - v1) carrying the
    multicast routes; removed afterwards."""
    name = new_shm_name("mc").replace(".", "_")[:15]
    ip = ["ip", "-n", name]
    setup = [["ip", "netns", "add", name],
             [*ip, "link", "set", "lo", "up"],
             [*ip, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
             [*ip, "link", "set", "v0", "up"], [*ip, "link", "set", "v1", "up"],
             [*ip, "addr", "add", "10.9.0.1/24", "dev", "v0"],
             [*ip, "addr", "add", "fd00::1/64", "dev", "v0", "nodad"],
             [*ip, "route", "add", "224.0.0.0/4", "dev", "v0"],
             [*ip, "-6", "route", "add", "ff05::/16", "dev", "v0"]]
    try:
        for cmd in setup:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                pytest.skip(f"cannot make a network namespace here ({' '.join(cmd)}: "
                            f"{done.stderr.strip()})")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def run_in(netns: str, family: str, loop: bool) -> dict:
    pool = new_shm_name("mcp").replace(".", "_")[:30].rstrip("_-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CHILD, pool,
                           family, "loop" if loop else "noloop"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", ["4", "6"])
def test_every_member_gets_every_packet(netns, family):
    out = run_in(netns, family, loop=True)
    want = [f"g{i}" for i in range(50)]
    assert out["r1"] == want
    assert out["r2"] == want
    assert out["ttl"] == 3 and out["loop"] == 1
    assert "multicast_ttl=256" in out["bad_ttl"]
    assert "multicast_loop" in out["bad_loop"]


def test_loopback_off_keeps_packets_from_local_members(netns):
    out = run_in(netns, "4", loop=False)
    assert out["loop"] == 0
    assert out["r1"] == [] and out["r2"] == []
