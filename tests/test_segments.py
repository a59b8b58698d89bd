"""Segments: names, permissions, and validation of what an attacher finds in /dev/shm."""

import os
import random
import struct

import pytest

import rtudp
from rtudp.shmring import BroadcastRing, MpscRing, validate_name
from rtudp.shmring._native import ffi, lib
from rtudp.shmring.errors import BadSegmentError, RtUdpError, SegmentNotFoundError

SHM = "/dev/shm"
HDR_T = "struct rtudp_segment_header"
RING_T = {"mpsc": "struct rtudp_mpsc_ring", "bcast": "struct rtudp_bcast_ring"}
CLASSES = {"mpsc": MpscRing, "bcast": BroadcastRing}
FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def seg_path(name):
    return os.path.join(SHM, "rtudp." + name)


def write_segment(name, data):
    fd = os.open(seg_path(name), os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def unlink_quietly(name):
    try:
        os.unlink(seg_path(name))
    except FileNotFoundError:
        pass


@pytest.fixture
def shm_name(shm_name):
    """The conftest's segment name; what a test wrote there by hand is removed after it,
    pass or fail."""
    yield shm_name
    unlink_quietly(shm_name)


def template(kind, name, capacity=1024):
    """The bytes of a freshly created, valid ring segment (the segment is removed)."""
    ring = CLASSES[kind].create(name, capacity=capacity)
    ring.close()
    try:
        with open(seg_path(name), "rb") as f:
            return f.read()
    finally:
        unlink_quietly(name)


def header_fields(kind, data):
    """[(field, offset, size, critical)] of the segment header and the ring's geometry."""
    out = []

    def add(struct_t, fname, base, critical, prefix="", index=None):
        ftype = dict(ffi.typeof(struct_t).fields)[fname].type
        if index is None:
            off, size, label = ffi.offsetof(struct_t, fname), ffi.sizeof(ftype), fname
        else:
            off, size, label = ffi.offsetof(struct_t, fname, index), ffi.sizeof(ftype.item), f"{fname}[{index}]"
        out.append((prefix + label, base + off, size, critical))

    for fname in ("magic", "layout_version", "kind", "total_size", "header_size", "ring_count"):
        add(HDR_T, fname, 0, True)
    add(HDR_T, "creator_pid", 0, False)
    add(HDR_T, "created_ns", 0, False)
    add(HDR_T, "ring_offset", 0, True, index=0)
    for i in (1, 2, 3):
        add(HDR_T, "ring_offset", 0, False, index=i)
    ring_off = get(data, ffi.offsetof(HDR_T, "ring_offset", 0), 8)
    for fname in ("magic", "kind", "capacity", "max_payload"):
        add(RING_T[kind], fname, ring_off, True, prefix="ring.")
    return out


def get(data, off, size):
    return struct.unpack_from(FMT[size], data, off)[0]


def patch(data, off, size, value):
    b = bytearray(data)
    struct.pack_into(FMT[size], b, off, value)
    return bytes(b)


def names_value(msg, value):
    low = msg.lower()
    return str(value) in msg or hex(value) in low or f"{value:x}" in low


def field(fields, name):
    return next(x for x in fields if x[0] == name)


# --------------------------------------------------------------------------- #
# names, permissions, existence
# --------------------------------------------------------------------------- #

BAD_NAMES = ["", "a/b", "x" * 49, "é", "a b", "../x", "abc\n", "a\x00b", "/abc", "ab*"]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_bad_names_are_value_errors_naming_the_value(bad):
    try:
        for call in (
            lambda: validate_name(bad),
            lambda: MpscRing.create(bad, capacity=4096),
            lambda: MpscRing.attach(bad),
            lambda: BroadcastRing.create(bad, capacity=4096),
            lambda: BroadcastRing.attach(bad),
        ):
            with pytest.raises(ValueError) as ei:
                call()
            msg = str(ei.value)
            assert repr(bad) in msg or (bad and bad in msg), msg
    finally:
        if bad and "/" not in bad and "\x00" not in bad and os.path.exists(seg_path(bad)):
            os.unlink(seg_path(bad))
            pytest.fail(f"a segment was created for the bad name {bad!r}")


def test_good_names(shm_names):
    validate_name("A-z_0.9")
    validate_name("x" * 48)
    name = (shm_names() + "_" + "x" * 48)[:48]
    with MpscRing.create(name, capacity=1024) as ring:
        assert ring.name == name
        assert os.path.exists(seg_path(name))
    assert not os.path.exists(seg_path(name)), "the creator's context manager must unlink"


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_segment_mode_0600_even_with_umask_0(shm_name, kind):
    old = os.umask(0)
    try:
        ring = CLASSES[kind].create(shm_name, capacity=4096)
    finally:
        os.umask(old)
    with ring:
        st = os.stat(seg_path(shm_name))
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        with pytest.raises(FileExistsError):
            CLASSES[kind].create(shm_name, capacity=4096)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_attach_missing_is_segment_not_found(shm_name, kind):
    with pytest.raises(SegmentNotFoundError) as ei:
        CLASSES[kind].attach(shm_name)
    assert isinstance(ei.value, FileNotFoundError)
    assert isinstance(ei.value, RtUdpError)
    assert rtudp.SegmentNotFoundError is SegmentNotFoundError
    assert shm_name in str(ei.value)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
@pytest.mark.parametrize("capacity", [0, 512, 1000, 3000, 1 << 41])
def test_create_bad_capacity_is_value_error(shm_name, kind, capacity):
    with pytest.raises(ValueError) as ei:
        CLASSES[kind].create(shm_name, capacity=capacity)
    assert str(capacity) in str(ei.value)
    assert not os.path.exists(seg_path(shm_name)), "failed create left a segment behind"


def test_unlink_and_close(shm_name):
    ring = MpscRing.create(shm_name, capacity=4096)
    other = MpscRing.attach(shm_name)
    other.close()  # an attacher's close never removes the segment
    assert os.path.exists(seg_path(shm_name))
    ring.try_put(b"x")
    ring.close()
    assert os.path.exists(seg_path(shm_name))
    with MpscRing.attach(shm_name) as again:  # attacher's context manager: no unlink
        assert again.try_get() == b"x"
    assert os.path.exists(seg_path(shm_name))
    ring.unlink()
    assert not os.path.exists(seg_path(shm_name))


def _mapped(name):
    """How many mappings of segment ``name`` this process has."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.rstrip().endswith("/rtudp." + name))


def test_a_shared_mapping_stays_until_its_last_user_closes(shm_name):
    from rtudp.shmring.segment import Segment
    seg = Segment.create(shm_name, 8192)
    try:
        ffi.cast("uint8_t *", seg.base)[100] = 7
        other = seg.share()
        assert _mapped(shm_name) == 1, "a share maps nothing again"
        seg.close()
        assert seg.closed and not other.closed
        assert ffi.cast("uint8_t *", other.base)[100] == 7, "still mapped for the other"
        with pytest.raises(ValueError, match="closed"):
            seg.share()
        other.close()
        other.close()  # idempotent: the mapping is dropped once
        assert _mapped(shm_name) == 0
    finally:
        seg.close()
        seg.unlink()


# --------------------------------------------------------------------------- #
# corrupt segments
# --------------------------------------------------------------------------- #


def assert_bad(kind, name, *values):
    with pytest.raises(BadSegmentError) as ei:
        CLASSES[kind].attach(name)
    assert isinstance(ei.value, RtUdpError)
    msg = str(ei.value)
    for v in values:
        assert names_value(msg, v), f"message {msg!r} does not name {v}"
    return msg


def assert_each_value_bad(kind, name, good, off, size, values):
    """Each value written over ``good`` at ``off`` makes attach fail naming the value."""
    for value in values:
        write_segment(name, patch(good, off, size, value))
        assert_bad(kind, name, value)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_valid_segment_written_by_hand_attaches(shm_name, kind):
    good = template(kind, shm_name)
    write_segment(shm_name, good)
    with CLASSES[kind].attach(shm_name) as ring:
        assert ring.stats()["capacity"] == 1024


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_random_bytes_segment(shm_name, kind):
    good = template(kind, shm_name)
    data = random.Random(1).randbytes(len(good))
    magic = get(data, 0, 8)
    write_segment(shm_name, data)
    assert_bad(kind, shm_name, magic)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_truncated_segment(shm_name, kind):
    good = template(kind, shm_name)
    for size in (0, 1, 64, 127, 128, 129, len(good) // 2, len(good) - 8, len(good) - 1):
        write_segment(shm_name, good)
        os.truncate(seg_path(shm_name), size)
        assert_bad(kind, shm_name, size)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_header_says_larger_than_file(shm_name, kind):
    good = template(kind, shm_name)
    _, off, size, _ = field(header_fields(kind, good), "total_size")
    totals = (len(good) + 8, len(good) * 1000, 1 << 40, (1 << 64) - 1, len(good) - 64)
    assert_each_value_bad(kind, shm_name, good, off, size, totals)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_wrong_layout_version(shm_name, kind):
    good = template(kind, shm_name)
    off = ffi.offsetof(HDR_T, "layout_version")
    current = lib.RTUDP_LAYOUT_VERSION
    assert get(good, off, 4) == current
    assert_each_value_bad(kind, shm_name, good, off, 4, (0, current - 1, current + 1, 0xFFFFFFFF))


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_wrong_magic(shm_name, kind):
    good = template(kind, shm_name)
    off = ffi.offsetof(HDR_T, "magic")
    assert_each_value_bad(kind, shm_name, good, off, 8, (0, 0x1122334455667788, get(good, off, 8) ^ 1))


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_wrong_ring_capacity(shm_name, kind):
    good = template(kind, shm_name)
    _, off, size, _ = field(header_fields(kind, good), "ring.capacity")
    assert get(good, off, size) == 1024
    capacities = (3000, 1023, 1025, 0, 512, 2048, 1 << 40, 1 << 63, (1 << 64) - 1)
    assert_each_value_bad(kind, shm_name, good, off, size, capacities)


@pytest.mark.parametrize("kind", ["mpsc", "bcast"])
def test_wrong_ring_geometry(shm_name, kind):
    good = template(kind, shm_name)
    fields = header_fields(kind, good)
    cases = [
        ("ring.magic", 0x474E4953),
        ("ring.kind", 3),
        ("ring.max_payload", 1 << 20),
        ("ring_offset[0]", 1 << 60),
        ("ring_offset[0]", len(good)),
        ("ring_offset[0]", 3),
        ("ring_count", 0),
        ("ring_count", 5),
        ("header_size", 64),
        ("kind", 99),
    ]
    for fname, value in cases:
        _, off, size, _ = field(fields, fname)
        write_segment(shm_name, patch(good, off, size, value))
        with pytest.raises(BadSegmentError) as ei:
            CLASSES[kind].attach(shm_name)
        assert str(ei.value), fname


def test_wrong_ring_kind(shm_names):
    m, b = shm_names(), shm_names()
    with MpscRing.create(m, capacity=4096), BroadcastRing.create(b, capacity=4096):
        with pytest.raises(BadSegmentError):
            BroadcastRing.attach(m)
        with pytest.raises(BadSegmentError):
            MpscRing.attach(b)


# --------------------------------------------------------------------------- #
# fuzz (in a spawned child: a crash is a failed test with its exit code)
# --------------------------------------------------------------------------- #


def _mutated_value(rnd, orig, size):
    bits = size * 8
    mask = (1 << bits) - 1
    choice = rnd.randrange(8)
    if choice == 0:
        v = 0
    elif choice == 1:
        v = mask
    elif choice == 2:
        v = orig + rnd.choice((1, -1, 8, -8, 64, -64))
    elif choice == 3:
        v = orig ^ (1 << rnd.randrange(bits))
    elif choice == 4:
        v = 1 << rnd.randrange(bits)
    elif choice == 5:
        v = rnd.randrange(1 << 16)
    elif choice == 6:
        v = orig * 2
    else:
        v = rnd.getrandbits(bits)
    return v & mask


def _fuzz(names, iterations, seed, conn):
    rnd = random.Random(seed)
    tmpl_m, tmpl_b, target = names
    goods = {"mpsc": template("mpsc", tmpl_m), "bcast": template("bcast", tmpl_b, capacity=2048)}
    fields = {k: header_fields(k, v) for k, v in goods.items()}
    hs = ffi.sizeof(HDR_T)
    counts = dict(bad=0, ok=0)
    failures = []
    try:
        for it in range(iterations):
            kind = rnd.choice(("mpsc", "bcast"))
            good = goods[kind]
            cls = CLASSES[kind]
            r = rnd.random()
            if r < 0.35:
                data = rnd.randbytes(rnd.randint(0, 2 * hs))
                must_fail, case = True, f"random {len(data)} bytes"
            elif r < 0.45:
                cut = rnd.randrange(len(good))
                data = good[:cut]
                must_fail, case = True, f"truncated to {cut}"
            elif r < 0.95:
                fname, off, size, critical = rnd.choice(fields[kind])
                orig = get(good, off, size)
                v = _mutated_value(rnd, orig, size)
                data = patch(good, off, size, v)
                must_fail, case = critical and v != orig, f"{fname} {orig:#x} -> {v:#x}"
            else:
                data = good
                if rnd.random() < 0.5:
                    cls = CLASSES["bcast" if kind == "mpsc" else "mpsc"]
                    must_fail, case = True, "attach with the other ring class"
                else:
                    must_fail, case = False, "valid"
            case = f"{kind}: {case}"
            write_segment(target, data)
            try:
                ring = cls.attach(target)
            except BadSegmentError as e:
                counts["bad"] += 1
                if not str(e):
                    failures.append(f"{case}: empty BadSegmentError message")
            except Exception as e:  # noqa: BLE001 - any other exception is a failure
                failures.append(f"{case}: {type(e).__name__}: {e}")
            else:
                counts["ok"] += 1
                try:
                    if must_fail:
                        failures.append(f"{case}: attach succeeded")
                    elif cls is MpscRing:
                        if not (ring.try_put(b"abc") and ring.try_get() == b"abc"):
                            failures.append(f"{case}: attached ring does not work")
                    else:
                        ring.reader()
                        ring.stats()
                finally:
                    ring.close()
            if len(failures) >= 20:
                break
    finally:
        unlink_quietly(target)
    conn.send((counts, failures))


def test_fuzz_headers_in_child(shm_names, children):
    names = (shm_names(), shm_names(), shm_names())
    parent_conn, child_conn = children.ctx.Pipe(duplex=False)
    iterations = 30_000
    p = children.start(_fuzz, names, iterations, 12345, child_conn, name="fuzz")
    try:
        got = parent_conn.poll(240)
        p.join(30)
        assert p.exitcode == 0, f"fuzz child crashed: exit code {p.exitcode}"
        assert got
        counts, failures = parent_conn.recv()
    finally:
        for n in names:
            unlink_quietly(n)
    assert failures == [], "\n".join(failures)
    assert counts["bad"] + counts["ok"] == iterations
    assert counts["bad"] > iterations * 0.7
    assert counts["ok"] > 0
