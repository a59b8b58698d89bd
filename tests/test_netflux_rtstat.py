"""rtstat shows a netflux channel's own counters (kind area): --json totals and the
netflux table of the text screen, matching the handle's stats()."""
from __future__ import annotations

import json
import subprocess
import time

from netflux_helpers import netflux_pair
from rtstat_helpers import RTSTAT


def _rtstat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RTSTAT, *args], capture_output=True, text=True, timeout=30)


def test_rtstat_shows_netflux_counters(rtudp_pool) -> None:
    opts = {"send_interval": 0.002, "watch_interval": 0.05, "send_size": 4, "recv_size": 4}
    a, b = netflux_pair(rtudp_pool, opts)
    with a, b:
        b.wait_update(2.0, after=0)
        time.sleep(0.2)
        before = b.stats()
        out = _rtstat("--pool", rtudp_pool.name, "--once", "--json", "--interval", "0.1")
        after = b.stats()
        text = _rtstat("--pool", rtudp_pool.name, "--once", "--interval", "0.1")
    assert out.returncode == 0, out.stderr
    (pool,) = json.loads(out.stdout)["pools"]
    chans = {c["name"]: c for c in pool["channels"]}
    t = chans["nfb"]["totals"]
    assert chans["nfb"]["kind"] == "netflux" and t["nf_link"] == "up"
    for key in ("nf_sent", "nf_valid", "nf_rtt_count"):
        assert before[key] <= t[key] <= after[key], key
    assert t["nf_partner_lost"] == after["nf_partner_lost"] == 0
    assert text.returncode == 0, text.stderr
    assert "netflux (totals)" in text.stdout and "nfb" in text.stdout
