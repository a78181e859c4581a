"""Time synchronisation of input topics, with message_filters' Python API.

On a robot's ROS install `message_filters` is importable and is used as is. Where it is not (the
PyPI rclpy wheels have no message_filters), this module provides the same classes with the same
constructor arguments and `registerCallback` / `signalMessage` protocol:

- `Subscriber(node, msg_type, topic, qos_profile=10, **create_subscription_kwargs)`; ours also
  takes `raw=True`: it passes on `SerializedMessage`s (CDR bytes + header stamp), which either
  synchronizer matches by stamp, and `deserialized()` turns the one served into a message.
- `TimeSynchronizer(fs, queue_size)`: emits a set when every input holds the same stamp.
- `ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=False)`: when a message
  arrives, every other input's message closest to its stamp and within `slop` seconds is taken;
  the set is emitted if its whole spread (newest - oldest stamp) is within `slop` too.

Semantics that are ours (documented differences): `slop` is inclusive; when a set is emitted the
messages older than it are discarded as well, so sets come out in time order; discarded and
overflowed messages are counted in `dropped`, and `reset()` clears the queues (for a publisher
restart). Use keyword arguments (`fs=`, `queue_size=`, `slop=`): both implementations accept them.
"""
from __future__ import annotations

import struct
import threading
import time
from itertools import product

__all__ = [
    "HAVE_MESSAGE_FILTERS",
    "ApproximateTimeSynchronizer",
    "SerializedMessage",
    "SimpleFilter",
    "Subscriber",
    "TimeSynchronizer",
    "cdr_header_stamp",
    "deserialized",
    "make_synchronizer",
]


class SimpleFilter:
    """A message source that calls its registered callbacks with its output."""

    def __init__(self):
        self.callbacks: dict[int, tuple] = {}

    def registerCallback(self, cb, *args) -> int:  # noqa: N802 (message_filters' name)
        """Call `cb(*msgs, *args)` on each output; returns a connection id."""
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msgs) -> None:  # noqa: N802
        for cb, args in list(self.callbacks.values()):
            cb(*(msgs + args))


class SerializedMessage:
    """A message still in its CDR bytes, with the header stamp read: what a `raw` `Subscriber`
    passes on, so superseded frames are never deserialized. `deserialized(msg, msg_type)` gives
    the message.

    Attributes:
        raw: the serialized message (as `create_subscription(..., raw=True)` delivers it).
        header: an object whose `stamp` is a `builtin_interfaces/Time` (no frame_id).
    """

    __slots__ = ("header", "raw")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.header = _StampOnly(cdr_header_stamp(raw))


class _StampOnly:
    __slots__ = ("stamp",)

    def __init__(self, stamp):
        self.stamp = stamp


def cdr_header_stamp(raw: bytes):
    """The `std_msgs/Header` stamp that opens a serialized message (Image, PointCloud2...).

    CDR: a 4-byte encapsulation header (byte 1 odd: little endian), then the stamp's int32 sec
    and uint32 nanosec.
    """
    from builtin_interfaces.msg import Time

    if len(raw) < 12:
        raise ValueError(f"a serialized message of {len(raw)} bytes has no header stamp")
    sec, nanosec = struct.unpack_from("<iI" if raw[1] & 1 else ">iI", raw, 4)
    return Time(sec=sec, nanosec=nanosec)


def deserialized(msg, msg_type):
    """`msg` itself, or the `msg_type` message of a `SerializedMessage`."""
    if isinstance(msg, SerializedMessage):
        from rclpy.serialization import deserialize_message
        return deserialize_message(msg.raw, msg_type)
    return msg


class Subscriber(SimpleFilter):
    """A ROS subscription as a filter; arguments as `Node.create_subscription` minus callback.

    With `raw=True` the filter passes on `SerializedMessage`s: the synchronizer needs only the
    stamps, and only the pair that is served gets deserialized (`deserialized`).
    """

    def __init__(self, node, msg_type, topic: str, qos_profile=10, raw: bool = False, **kwargs):
        super().__init__()
        self.node = node
        self.topic = topic
        self.raw = raw
        self.sub = node.create_subscription(msg_type, topic,
                                            self.raw_callback if raw else self.callback,
                                            qos_profile, raw=raw, **kwargs)

    def callback(self, msg) -> None:
        self.signalMessage(msg)

    def raw_callback(self, raw: bytes) -> None:
        self.signalMessage(SerializedMessage(raw))

    def __getattr__(self, key):
        # like message_filters: everything else is the underlying rclpy Subscription's
        return getattr(self.__dict__["sub"], key)


def _stamp_ns(msg, allow_headerless: bool) -> int | None:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return time.time_ns() if allow_headerless else None
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class TimeSynchronizer(SimpleFilter):
    """Emits one message per input when all inputs hold a message with the same stamp.

    Args:
        fs: the input filters (e.g. `Subscriber`s).
        queue_size: messages kept per input while waiting for their partners.
    """

    def __init__(self, fs, queue_size: int):
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.queue_size = int(queue_size)
        self.allow_headerless = False
        self.dropped = 0  # messages discarded unmatched (overflow, or older than an emitted set)
        self.lock = threading.Lock()
        self.connectInput(fs)

    def connectInput(self, fs) -> None:  # noqa: N802
        self.queues: list[dict[int, object]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i)
                                  for i, (f, q) in enumerate(zip(fs, self.queues))]

    def reset(self) -> int:
        """Forget every queued message; returns how many were discarded (counted in `dropped`)."""
        with self.lock:
            n = sum(len(q) for q in self.queues)
            for q in self.queues:
                q.clear()
            self.dropped += n
            return n

    def add(self, msg, my_queue: dict, my_queue_index: int | None = None) -> None:
        stamp = _stamp_ns(msg, self.allow_headerless)
        if stamp is None:
            return
        with self.lock:
            my_queue[stamp] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
                self.dropped += 1
            chosen = self._match(stamp, my_queue_index)
            if chosen is None:
                return
            msgs = tuple(q.pop(t) for q, t in zip(self.queues, chosen))
            for q, t in zip(self.queues, chosen):
                older = [s for s in q if s < t]
                for s in older:
                    del q[s]
                self.dropped += len(older)
            self.signalMessage(*msgs)

    def _match(self, stamp: int, index: int | None) -> list[int] | None:
        """The stamps (one per input) of the set completed by a message at `stamp`, or None."""
        if all(stamp in q for q in self.queues):
            return [stamp] * len(self.queues)
        return None


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits one message per input when their stamps lie within `slop` seconds of each other.

    Args:
        fs: the input filters.
        queue_size: messages kept per input while waiting for their partners.
        slop: largest allowed spread of stamps in a set, in seconds (inclusive).
        allow_headerless: stamp messages without a header with the arrival wall time.
    """

    def __init__(self, fs, queue_size: int, slop: float, allow_headerless: bool = False):
        super().__init__(fs, queue_size)
        if slop < 0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        self.slop_ns = int(round(slop * 1e9))
        self.allow_headerless = allow_headerless

    def _match(self, stamp: int, index: int | None) -> list[int] | None:
        # per other input: its stamps within slop of the new one, closest first
        candidates = []
        for i, q in enumerate(self.queues):
            if i == index:
                candidates.append([stamp])
                continue
            near = sorted((s for s in q if abs(s - stamp) <= self.slop_ns),
                          key=lambda s: abs(s - stamp))
            if not near:
                return None
            candidates.append(near)
        # closest-first combinations; the first whose spread fits the slop wins
        for combo in product(*candidates):
            if max(combo) - min(combo) <= self.slop_ns:
                return list(combo)
        return None


try:  # a ROS install's message_filters, when present, is the reference implementation
    import message_filters as _message_filters
except ImportError:
    _message_filters = None

HAVE_MESSAGE_FILTERS = _message_filters is not None


def make_synchronizer(fs, *, queue_size: int, slop: float, exact: bool, use_message_filters=None):
    """The synchronizer the node uses: message_filters' when importable, ours otherwise.

    Args:
        fs: subscribers made with `subscriber_class(use_message_filters)`.
        queue_size, slop: as `ApproximateTimeSynchronizer` (slop unused when `exact`).
        exact: use exact-time matching (`TimeSynchronizer`).
        use_message_filters: force one implementation; None picks message_filters if present.
    """
    mf = _message_filters if (use_message_filters is None or use_message_filters) else None
    if use_message_filters and mf is None:
        raise ImportError("message_filters is not importable")
    if exact:
        return (mf.TimeSynchronizer if mf else TimeSynchronizer)(fs=fs, queue_size=queue_size)
    return (mf.ApproximateTimeSynchronizer if mf else ApproximateTimeSynchronizer)(
        fs=fs, queue_size=queue_size, slop=slop)


def subscriber_class(use_message_filters=None):
    """message_filters.Subscriber when importable (or forced), else ours."""
    if use_message_filters is None:
        use_message_filters = HAVE_MESSAGE_FILTERS
    return _message_filters.Subscriber if use_message_filters else Subscriber
