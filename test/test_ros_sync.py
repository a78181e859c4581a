"""The message_filters-compatible synchronizers, driven by plain filters (no DDS needed)."""
import random
from types import SimpleNamespace

import pytest

from naima_ros.ros import sync
from naima_ros.ros.sync import ApproximateTimeSynchronizer, SimpleFilter, TimeSynchronizer


def msg(t_ns: int, tag: str = ""):
    stamp = SimpleNamespace(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), tag=tag, t=t_ns)


MS = 1_000_000


@pytest.fixture
def inputs():
    a, b = SimpleFilter(), SimpleFilter()
    out = []
    return a, b, out


def test_approximate_pairs_within_slop_and_picks_closest(inputs):
    a, b, out = inputs
    s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=10, slop=0.010)
    s.registerCallback(lambda x, y, extra: out.append((x.t, y.t, extra)), "arg")
    a.signalMessage(msg(100 * MS))
    b.signalMessage(msg(95 * MS))   # within slop -> pair
    assert out == [(100 * MS, 95 * MS, "arg")]
    a.signalMessage(msg(200 * MS))
    b.signalMessage(msg(215 * MS))  # 15 ms apart: no pair
    assert len(out) == 1
    b.signalMessage(msg(203 * MS))  # closest to 200 within 10 ms
    assert out[-1][:2] == (200 * MS, 203 * MS)
    assert s.queues[1] == {215 * MS: s.queues[1][215 * MS]}  # the newer one waits


def test_approximate_slop_is_inclusive_and_exact_spread_checked(inputs):
    a, b, out = inputs
    c = SimpleFilter()
    s = ApproximateTimeSynchronizer(fs=[a, b, c], queue_size=5, slop=0.010)
    s.registerCallback(lambda *m: out.append(tuple(x.t for x in m)))
    a.signalMessage(msg(0 + 1000 * MS))
    b.signalMessage(msg(1010 * MS))  # 10 ms from a
    c.signalMessage(msg(1020 * MS))  # 10 ms from b, 20 ms from a: spread too large
    assert out == []
    c.signalMessage(msg(1005 * MS))
    assert out == [(1000 * MS, 1010 * MS, 1005 * MS)]


def test_emission_discards_older_messages_and_counts_them(inputs):
    a, b, out = inputs
    s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=10, slop=0.001)
    s.registerCallback(lambda x, y: out.append((x.t, y.t)))
    for t in (10, 20, 30):
        a.signalMessage(msg(t * MS))
    b.signalMessage(msg(30 * MS))
    assert out == [(30 * MS, 30 * MS)]
    assert s.dropped == 2 and s.queues == [{}, {}]
    b.signalMessage(msg(10 * MS))  # late partner of a discarded message: nothing to match
    assert len(out) == 1


def test_queue_overflow_counts_drops_and_reset_clears(inputs):
    a, b, out = inputs
    s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=3, slop=0.001)
    for t in range(5):
        a.signalMessage(msg((t + 1) * 100 * MS))
    assert sorted(s.queues[0]) == [300 * MS, 400 * MS, 500 * MS] and s.dropped == 2
    assert s.reset() == 3 and s.dropped == 5 and s.queues == [{}, {}]


def test_exact_time_synchronizer(inputs):
    a, b, out = inputs
    s = TimeSynchronizer(fs=[a, b], queue_size=5)
    s.registerCallback(lambda x, y: out.append((x.t, y.t)))
    a.signalMessage(msg(1 * MS))
    b.signalMessage(msg(1 * MS + 1))  # 1 ns off: not exact
    assert out == []
    b.signalMessage(msg(1 * MS))
    assert out == [(1 * MS, 1 * MS)]


def test_headerless_messages_ignored_unless_allowed(inputs):
    a, b, out = inputs
    s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=5, slop=5.0)
    s.registerCallback(lambda x, y: out.append((x, y)))
    a.signalMessage(SimpleNamespace(data=1))
    assert s.queues == [{}, {}]
    s.allow_headerless = True
    a.signalMessage(SimpleNamespace(data=1))
    b.signalMessage(SimpleNamespace(data=2))
    assert [(x.data, y.data) for x, y in out] == [(1, 2)]


@pytest.mark.parametrize("kwargs,match", [
    ({"queue_size": 0, "slop": 0.1}, "queue_size"),
    ({"queue_size": 1, "slop": -0.1}, "slop"),
])
def test_bad_arguments(inputs, kwargs, match):
    a, b, _ = inputs
    with pytest.raises(ValueError, match=match):
        ApproximateTimeSynchronizer(fs=[a, b], **kwargs)


@pytest.mark.parametrize("seed", range(5))
def test_random_streams_invariants(seed):
    """Jittered, lossy, reordered streams: every set fits the slop, sets come out in time order,
    and every message is emitted, counted as dropped, or still queued."""
    rng = random.Random(seed)
    a, b = SimpleFilter(), SimpleFilter()
    slop = 0.008
    s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=4, slop=slop)
    out = []
    s.registerCallback(lambda x, y: out.append((x.t, y.t)))
    events = []
    for k in range(300):
        base = k * 33 * MS
        if rng.random() > 0.1:
            events.append((base + rng.randint(0, 3 * MS), a, base + rng.randint(-2 * MS, 2 * MS)))
        if rng.random() > 0.1:
            events.append((base + rng.randint(0, 6 * MS), b, base + rng.randint(-6 * MS, 6 * MS)))
    events.sort(key=lambda e: e[0])  # arrival order differs from stamp order across inputs
    for _, f, t in events:
        f.signalMessage(msg(t))
    assert len(out) > 150
    assert all(abs(x - y) <= slop * 1e9 for x, y in out)
    assert all(p[0] < q[0] and p[1] < q[1] for p, q in zip(out, out[1:]))
    queued = sum(len(q) for q in s.queues)
    assert 2 * len(out) + s.dropped + queued == len(events)


def test_make_synchronizer_uses_ours_without_message_filters(inputs):
    a, b, _ = inputs
    assert sync.HAVE_MESSAGE_FILTERS is False  # not installable on this machine
    assert sync.subscriber_class() is sync.Subscriber
    approx = sync.make_synchronizer([a, b], queue_size=3, slop=0.05, exact=False)
    exact = sync.make_synchronizer([a, b], queue_size=3, slop=0.05, exact=True)
    assert type(approx) is ApproximateTimeSynchronizer and approx.slop_ns == 50 * MS
    assert type(exact) is TimeSynchronizer
    with pytest.raises(ImportError):
        sync.make_synchronizer([a, b], queue_size=3, slop=0.05, exact=False,
                               use_message_filters=True)


def test_make_synchronizer_prefers_message_filters_when_importable(inputs, monkeypatch):
    """With a message_filters module present its classes are used, called with keywords only."""
    calls = []

    class Fake:
        def __init__(self, **kwargs):
            calls.append((type(self).__name__, kwargs))

    class ApproximateTimeSynchronizer(Fake):
        pass

    class TimeSynchronizer(Fake):
        pass

    fake = SimpleNamespace(ApproximateTimeSynchronizer=ApproximateTimeSynchronizer,
                           TimeSynchronizer=TimeSynchronizer, Subscriber=object)
    monkeypatch.setattr(sync, "_message_filters", fake)
    a, b, _ = inputs
    sync.make_synchronizer([a, b], queue_size=7, slop=0.1, exact=False)
    sync.make_synchronizer([a, b], queue_size=7, slop=0.1, exact=True)
    assert calls == [("ApproximateTimeSynchronizer", {"fs": [a, b], "queue_size": 7, "slop": 0.1}),
                     ("TimeSynchronizer", {"fs": [a, b], "queue_size": 7})]
    assert sync.subscriber_class(True) is object


# ---------------------------------------------------------------------- raw (serialized) inputs
def serialized_image(t_ns: int, frame: str = "cam"):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    image = Image(height=2, width=3, encoding="mono8", step=3, data=bytes(range(6)))
    image.header.stamp.sec, image.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    image.header.frame_id = frame
    return image, serialize_message(image)


def test_serialized_message_reads_the_stamp_and_deserializes_the_same_message():
    pytest.importorskip("rclpy")
    from sensor_msgs.msg import Image

    image, raw = serialized_image(1_700_000_000_123_456_789)
    wrapped = sync.SerializedMessage(raw)
    assert (wrapped.header.stamp.sec, wrapped.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert sync.deserialized(wrapped, Image) == image
    assert sync.deserialized(image, Image) is image  # a message passes through


def test_cdr_header_stamp_big_endian_and_too_short():
    pytest.importorskip("rclpy")
    import struct

    raw = b"\x00\x00\x00\x00" + struct.pack(">iI", 12, 34) + b"\x00" * 8  # CDR_BE
    stamp = sync.cdr_header_stamp(raw)
    assert (stamp.sec, stamp.nanosec) == (12, 34)
    with pytest.raises(ValueError, match="no header stamp"):
        sync.cdr_header_stamp(b"\x00\x01\x00\x00")


def test_synchronizer_pairs_serialized_messages_like_messages():
    pytest.importorskip("rclpy")
    stamps_a = [100, 133, 166, 200, 233]
    stamps_b = [101, 134, 170, 199, 260]
    results = []
    for raw in (False, True):
        a, b, out = SimpleFilter(), SimpleFilter(), []
        s = ApproximateTimeSynchronizer(fs=[a, b], queue_size=5, slop=0.005)
        s.registerCallback(lambda x, y: out.append((x.header.stamp.nanosec,
                                                    y.header.stamp.nanosec)))
        for ta, tb in zip(stamps_a, stamps_b):
            for f, t in ((a, ta), (b, tb)):
                image, data = serialized_image(t * MS)
                f.signalMessage(sync.SerializedMessage(data) if raw else image)
        results.append((out, s.dropped))
    assert results[0] == results[1]
    assert results[0][0] == [(t * MS, u * MS) for t, u in ((100, 101), (133, 134), (166, 170), (200, 199))]
