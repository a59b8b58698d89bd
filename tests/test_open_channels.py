"""Pool.open_channels: a batch opens whole or not at all, and its channels work."""
from __future__ import annotations

import os

import pytest

import rtudp
from rtudp.shmring.control import ControlSegment
from ports import loopback_sink


def test_a_batch_opens_in_order_and_every_channel_sends(rtudp_pool):
    sink = loopback_sink(5.0)
    try:
        chans = rtudp_pool.open_channels(
            [{"name": f"b{i}", "remote": sink.getsockname(), "direction": 0, "capacity": 64}
             for i in range(40)])
        assert [c.name for c in chans] == [f"b{i}" for i in range(40)]
        assert sorted(rtudp_pool.channels()) == sorted(f"b{i}" for i in range(40))
        for i, c in enumerate(chans):
            c.send(b"%d" % i)
        got = sorted(int(sink.recv(64)) for _ in range(40))
        assert got == list(range(40))
    finally:
        sink.close()


def test_a_bad_item_leaves_nothing_of_the_batch_open(rtudp_pool):
    rtudp_pool.open_channel("kept", direction=1)
    good = [{"name": f"g{i}", "direction": 1} for i in range(5)]
    with pytest.raises(ValueError, match="capacity"):
        rtudp_pool.open_channels([*good, {"name": "bad", "direction": 1, "capacity": -3}])
    assert rtudp_pool.channels() == ["kept"]
    # a name already open is refused the same way, naming it
    with pytest.raises(ValueError, match="'kept'"):
        rtudp_pool.open_channels([*good, {"name": "kept", "direction": 1}])
    assert rtudp_pool.channels() == ["kept"]
    with pytest.raises(ValueError, match="more than once"):
        rtudp_pool.open_channels([{"name": "x", "direction": 1}, {"name": "x", "direction": 1}])
    # the slots of the refused batches are free again: a whole batch fits after them
    assert len(rtudp_pool.open_channels(good)) == 5


def test_the_table_finds_names_and_free_slots_past_a_thousand(rtudp_pool):
    chans = rtudp_pool.open_channels([{"name": f"n{i}", "direction": 1, "capacity": 16}
                                      for i in range(1100)])
    ctl = ControlSegment.open(rtudp_pool.name)
    try:
        slot = ctl.find_channel("n1099")
        assert slot is not None and ctl.slot_name(slot) == "n1099"
        assert ctl.find_channel("n10") != ctl.find_channel("n1")  # no prefix match
        assert ctl.find_channel("n1100") is None
        # a hint is read first and never trusted: a slot of another name, a slot
        # out of the table, a freed slot all fall back to the search
        assert ctl.find_channel("n1099", hint=slot) == slot
        assert ctl.find_channel("n1099", hint=ctl.find_channel("n3")) == slot
        assert ctl.find_channel("n1099", hint=10**6) == slot
        assert ctl.find_channel("n1099", hint=-1) == slot
        five = ctl.find_channel("n5")
        chans[5].close()
        assert ctl.find_channel("n5") is None
        assert ctl.find_channel("n5", hint=five) is None
        assert len(rtudp_pool.channels()) == 1099
    finally:
        ctl.close()
    assert rtudp.attach("n700", pool=rtudp_pool.name).name == "n700"


def test_a_worker_refusing_one_leaves_nothing_of_the_batch_on_any_worker(rtudp_pool,
                                                                          monkeypatch):
    """The workers take a batch side by side; one's refusal still undoes the whole
    batch on every worker."""
    from rtudp.workers.channel_table import ChannelTable
    prepare = ChannelTable._prepare

    def spoil_bad(self, config, owner):
        ch = prepare(self, config, owner)
        if config.name == "bad":
            ch.seg.block.direction = 7  # as a client scribbling on the segment would
        return ch

    rtudp_pool.open_channel("kept", direction=1)
    before = [w["channels"] for w in rtudp_pool.workers()]
    monkeypatch.setattr(ChannelTable, "_prepare", spoil_bad)
    batch = [{"name": f"g{i}", "direction": 1} for i in range(8)]
    batch.insert(5, {"name": "bad", "direction": 1})
    with pytest.raises(rtudp.WorkerError, match="refused channel 'bad'.*direction 7"):
        rtudp_pool.open_channels(batch)
    assert rtudp_pool.channels() == ["kept"]
    assert len(before) > 1 and [w["channels"] for w in rtudp_pool.workers()] == before
    monkeypatch.undo()
    assert len(rtudp_pool.open_channels(batch)) == 9  # names and slots are free again


def test_a_handle_that_cannot_be_made_leaves_nothing_of_the_batch_open(rtudp_pool,
                                                                       monkeypatch):
    """The handles are made while the workers set the channels up: one that fails
    undoes the whole batch, on the workers too, and closes the handles made before it."""
    rtudp_pool.open_channel("kept", direction=1)
    before = [w["channels"] for w in rtudp_pool.workers()]
    made = []
    make = type(rtudp_pool)._make_channel

    def make_or_fail(self, name, slot=None):
        if name == "bad":
            raise MemoryError("no room for the handle of 'bad'")
        made.append(make(self, name, slot))
        return made[-1]

    monkeypatch.setattr(type(rtudp_pool), "_make_channel", make_or_fail)
    batch = [{"name": f"g{i}", "direction": 1} for i in range(6)]
    batch.insert(3, {"name": "bad", "direction": 1})
    with pytest.raises(MemoryError, match="'bad'"):
        rtudp_pool.open_channels(batch)
    assert [h.name for h in made] == ["g0", "g1", "g2"] and all(h.closed for h in made)
    assert rtudp_pool.channels() == ["kept"]
    assert [w["channels"] for w in rtudp_pool.workers()] == before
    batch_segments = {f"rtudp.{rtudp_pool.name}.{item['name']}" for item in batch}
    assert not batch_segments & set(os.listdir("/dev/shm"))
    monkeypatch.undo()
    assert len(rtudp_pool.open_channels(batch)) == 7  # names and slots are free again
