"""Pool bookkeeping never mistakes another rtudp segment (a ring) for a pool."""
from __future__ import annotations

import os

import pytest

from rtudp import MpscRing
from rtudp.workers import registry


def test_a_ring_named_like_a_pool_is_never_cleaned_or_listed() -> None:
    name = f"reg{os.getpid()}"
    with MpscRing.create(name, capacity=4096) as ring:
        ring.put(b"keep me")
        assert name not in registry.list_pools()
        with pytest.raises(ValueError, match="not a pool's control segment"):
            registry.clean_stale(name)
        assert os.path.exists(f"/dev/shm/rtudp.{name}")
        assert MpscRing.attach(name).get(timeout=0) == b"keep me"
