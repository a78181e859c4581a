"""rosbag2 reading and writing for the bag tools, over `rosbags` (pure Python, no ROS install).

Holds what every `naima-bag` subcommand shares: the topic names (`Topics`, defaulting to the
node's), the message type names (re-exported from `naima_ros.contract`) and type store, a reader
that turns every way a user's bag can be broken (missing, not a bag, missing topic, truncated or
corrupt storage) into a `BagError` naming the file or topic, a writer that always finalises
what it wrote (metadata version 8, mcap or sqlite3) even when the run fails, and the small
conversions between `rosbags` messages and arrays. Pixel decoding is
`naima_ros.depth_codec`, the code the node uses. A ROS 1 `.bag` is read too, its messages
converted to the ROS 2 types (`naima_ros.bags.ros1`), so every subcommand takes one as input.
"""
from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from naima_ros.contract import (CAMERA_INFO, COMPRESSED_IMAGE, DIAGNOSTIC_ARRAY, IMAGE,
                                 POINT_CLOUD, TOPICS)
from naima_ros.depth_codec import decode_color, decode_depth, encode_depth
from naima_ros.serving import stamp_ns

__all__ = [
    "BAG_VERSION",
    "CAMERA_INFO",
    "CUSTOM_FRAMES_KEY",
    "DEPTH_UNITS",
    "DIAGNOSTIC_ARRAY",
    "COMPRESSED_IMAGE",
    "IMAGE",
    "POINT_CLOUD",
    "STORAGES",
    "TYPESTORE",
    "BagError",
    "BagReader",
    "BagWriter",
    "Topics",
    "decode_depth_msg",
    "decode_rgb_msg",
    "depth_msg",
    "deserialize",
    "header",
    "raw_stamp_ns",
    "rgb_msg",
    "unit_of",
]

BAG_VERSION = 8  # rosbag2 metadata version (issue 5: so that Humble-era tools read the bags)
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
# depth encoding -> (the unit errors are reported in, factor from metres)
DEPTH_UNITS = {"16UC1": ("mm", 1000.0), "mono16": ("mm", 1000.0), "32FC1": ("m", 1.0)}
REPAIR_HINT = ("a killed recording can be repaired with `ros2 bag reindex` (an .mcap file also "
               "with `mcap recover`)")
ROS1_REPAIR_HINT = "a killed ROS 1 recording can be repaired with `rosbag reindex`"
CUSTOM_FRAMES_KEY = "naima.frames"  # custom_data: JSON {depth stamp ns: frame name}


class BagError(RuntimeError):
    """A bag cannot be read or written as asked; the message names the file or the topic."""


@dataclass(frozen=True)
class Topics:
    """Topic names in a bag; every one is renameable (real recordings use their driver's names).

    The defaults are the node's topics (`naima_ros.contract.TOPICS`, same role names) in the root
    namespace, plus the ground truth, which only bags have.
    """

    rgb: str = TOPICS["rgb"].absolute
    rgb_info: str = TOPICS["rgb_info"].absolute
    depth: str = TOPICS["depth"].absolute
    depth_info: str = TOPICS["depth_info"].absolute  # with register_depth
    gt: str = "/depth_gt/image_rect"
    out_image: str = TOPICS["out_image"].absolute
    out_confidence: str = TOPICS["out_confidence"].absolute
    out_info: str = TOPICS["out_info"].absolute
    out_points: str = TOPICS["out_points"].absolute
    diagnostics: str = TOPICS["diagnostics"].absolute

    @classmethod
    def roles(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def inputs(self) -> tuple[str, ...]:
        return (self.rgb, self.rgb_info, self.depth)

    def outputs(self) -> tuple[str, ...]:
        return (self.out_image, self.out_confidence, self.out_info, self.out_points)


# ---------------------------------------------------------------------- message helpers
def raw_stamp_ns(raw, topic: str = "?", path="bag") -> int:
    """Header stamp (ns) of a serialised message that starts with a std_msgs/Header.

    Reads the 8 bytes after the 4-byte CDR encapsulation header (int32 sec, uint32 nanosec in
    the encapsulation's byte order) without deserialising the rest, e.g. the image.
    """
    raw = memoryview(raw)
    if len(raw) < 12 or raw[1] not in (0, 1):
        raise BagError(f"bag {path}: a message on topic {topic} is too short or not CDR "
                       f"(truncated or corrupt)")
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def header(stamp: int, frame_id: str):
    """A `std_msgs/Header` for `stamp` nanoseconds."""
    types = TYPESTORE.types
    sec, nanosec = divmod(int(stamp), 1_000_000_000)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_msg(hdr, data: bytes, encoding: str, height: int, width: int, step: int,
              is_bigendian: bool):
    return TYPESTORE.types[IMAGE](header=hdr, height=height, width=width, encoding=encoding,
                                  is_bigendian=int(is_bigendian), step=step,
                                  data=np.frombuffer(data, dtype=np.uint8))


def depth_msg(hdr, depth_m: np.ndarray, encoding: str):
    """A depth Image (32FC1 metres NaN invalid, or 16UC1 millimetres 0 invalid)."""
    enc = encode_depth(depth_m, encoding)
    return image_msg(hdr, enc.data, enc.encoding, enc.height, enc.width, enc.step,
                     enc.is_bigendian)


def rgb_msg(hdr, rgb: np.ndarray):
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    return image_msg(hdr, rgb.tobytes(), "rgb8", height, width, 3 * width, False)


def decode_depth_msg(msg, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """(depth_m NaN invalid, valid) of a depth Image; BagError naming the topic if undecodable."""
    try:
        return decode_depth(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                            bool(msg.is_bigendian))
    except ValueError as exc:
        raise BagError(f"topic {topic} (stamp {stamp_ns(msg.header.stamp)} ns): {exc}") from exc


def decode_rgb_msg(msg, topic: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour Image; BagError naming the topic if undecodable."""
    try:
        return decode_color(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                            bool(msg.is_bigendian))
    except ValueError as exc:
        raise BagError(f"topic {topic} (stamp {stamp_ns(msg.header.stamp)} ns): {exc}") from exc


def unit_of(encoding: str, topic: str) -> tuple[str, float]:
    """(unit name, factor from metres) of a depth encoding: the bag's units for the errors."""
    if encoding not in DEPTH_UNITS:
        raise BagError(f"topic {topic}: unknown depth encoding {encoding!r} (supported: "
                       f"{', '.join(DEPTH_UNITS)})")
    return DEPTH_UNITS[encoding]


# ---------------------------------------------------------------------- reading
class BagReader:
    """An open rosbag2 (directory, or a single .mcap / .db3 file) or ROS 1 .bag, read-only.

    Args:
        path: the bag.

    Raises:
        BagError: missing path, not a bag, unsupported or damaged metadata/storage.
    """

    def __init__(self, path: str | Path):
        from naima_ros.bags.ros1 import Ros1Bag, is_ros1_bag

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is not a rosbag2 (no metadata.yaml in the folder); "
                           f"{REPAIR_HINT}")
        self.is_ros1 = is_ros1_bag(self.path)
        try:
            self._reader = Ros1Bag(self.path, TYPESTORE) if self.is_ros1 else Reader(self.path)
            self._reader.open()
        except Exception as exc:  # noqa: BLE001 (rosbags and sqlite raise many types)
            if self.is_ros1:
                raise BagError(f"cannot open ROS 1 bag {self.path}: it is truncated, corrupt or "
                               f"not a ROS 1 bag ({type(exc).__name__}: {exc}); "
                               f"{ROS1_REPAIR_HINT}") from exc
            files = sorted(str(p) for p in self.path.glob("*") if p.suffix in (".mcap", ".db3")) \
                if self.path.is_dir() else [str(self.path)]
            raise BagError(f"cannot open bag {self.path} (file {', '.join(files) or 'none'}): it "
                           f"is truncated, corrupt or not a rosbag2 ({type(exc).__name__}: "
                           f"{exc}); {REPAIR_HINT}") from exc
        # ROS 1 topics whose type has no ROS 2 equivalent here: {topic: why}
        self.skipped: dict[str, str] = getattr(self._reader, "skipped", {})
        self.read_count = 0

    def close(self) -> None:
        try:
            self._reader.close()
        except Exception:  # noqa: BLE001 (closing a damaged bag must not hide the first error)
            pass

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def topics(self) -> dict[str, str]:
        """{topic: message type} of every connection."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def connections(self):
        return self._reader.connections

    @property
    def message_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self._reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
        return counts

    @property
    def custom_data(self) -> dict[str, str]:
        meta = getattr(getattr(self._reader, "storage", None), "metadata", None)
        return dict(getattr(meta, "custom", None) or {})

    def frame_names(self) -> dict[int, str]:
        """{depth stamp ns: frame name} recorded by `naima-bag make` (empty for other bags)."""
        raw = self.custom_data.get(CUSTOM_FRAMES_KEY)
        try:
            return {int(k): str(v) for k, v in json.loads(raw).items()} if raw else {}
        except (ValueError, AttributeError):
            return {}

    def require(self, topics: dict[str, str], msgtype: dict[str, str] | None = None) -> None:
        """Check that every {role: topic} is in the bag (with the expected type, if given).

        Raises:
            BagError: naming each missing topic, the option that renames it and the bag's topics.
        """
        have = self.topics
        missing = [f"{topic} (--{role.replace('_', '-')}-topic"
                   + (f"; left out of this ROS 1 bag: {self.skipped[topic]})"
                      if topic in self.skipped else ")")
                   for role, topic in topics.items() if topic not in have]
        if missing:
            listing = ", ".join(f"{t} [{m}]" for t, m in sorted(have.items())) or "none"
            raise BagError(f"bag {self.path} has no topic {', '.join(missing)}; its topics: "
                           f"{listing}")
        for role, topic in topics.items():
            want = (msgtype or {}).get(role)
            if want and have[topic] != want:
                raise BagError(f"bag {self.path}: topic {topic} holds {have[topic]}, expected "
                               f"{want}")

    def raw_messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[object, int,
                                                                                  bytes]]:
        """Yield (connection, log time ns, CDR bytes) in storage order.

        Raises:
            BagError: the storage breaks off (truncated or corrupt file), naming the file and how
                many messages were read before.
        """
        wanted = None if topics is None else set(topics)
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 (storage parsers raise many types)
                raise BagError(f"bag {self.path} is truncated or corrupt: reading stopped after "
                               f"{self.read_count} messages ({type(exc).__name__}: {exc})"
                               ) from exc
            self.read_count += 1
            yield item

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, object]]:
        """Yield (topic, log time ns, deserialised message)."""
        for conn, log_ns, raw in self.raw_messages(topics):
            yield conn.topic, log_ns, deserialize(raw, conn.msgtype, conn.topic, self.path)


def deserialize(raw: bytes, msgtype: str, topic: str, path: Path | str = "bag"):
    try:
        return TYPESTORE.deserialize_cdr(raw, msgtype)
    except Exception as exc:  # noqa: BLE001 (a short or garbled CDR buffer)
        raise BagError(f"bag {path}: a {msgtype} message on topic {topic} cannot be decoded "
                       f"(truncated or corrupt: {type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------- writing
class BagWriter:
    """A new rosbag2 (metadata version 8) that is always finalised, even if the caller fails.

    Used as a context manager. On an exception the messages written so far are closed into a
    readable bag (metadata.yaml included) before the exception propagates: nothing written is
    lost. An existing path is never replaced unless `overwrite` and it is a rosbag2 folder.

    Args:
        path: the bag folder to create.
        storage: "mcap" (default) or "sqlite3".
        overwrite: replace an existing rosbag2 folder at `path`.
        custom_data: metadata `custom_data` strings.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", *, overwrite: bool = False,
                 custom_data: dict[str, str] | None = None):
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r} (use {' or '.join(STORAGES)})")
        if self.path.exists():
            if not overwrite:
                raise BagError(f"{self.path} exists; not overwriting it (pass --overwrite to "
                               f"replace it)")
            if not (self.path.is_dir() and (self.path / "metadata.yaml").is_file()):
                raise BagError(f"{self.path} exists and is not a rosbag2 folder; not replacing it")
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        self._connections: dict[tuple[str, str], object] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()  # on success and on failure alike: finalise what was written

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.set_custom_data(key, value)

    def _connection(self, topic: str, msgtype: str, source=None):
        key = (topic, msgtype)
        if key not in self._connections:
            if msgtype in TYPESTORE.types:
                conn = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            elif source is not None and source.msgdef.data and source.digest:
                conn = self._writer.add_connection(topic, msgtype, msgdef=source.msgdef.data,
                                                   rihs01=source.digest)
            else:
                raise BagError(f"topic {topic}: message type {msgtype} is unknown here and the "
                               f"source bag carries no definition for it")
            self._connections[key] = conn
        return self._connections[key]

    def declare(self, topic: str, msgtype: str) -> None:
        """Create a topic now, so the bag lists it even if no message comes."""
        self._connection(topic, msgtype)

    def write_raw(self, topic: str, msgtype: str, log_ns: int, raw: bytes, source=None) -> None:
        """Write CDR bytes as they are (copying from another bag or from DDS)."""
        self._writer.write(self._connection(topic, msgtype, source), int(log_ns), raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write(self, topic: str, msg, log_ns: int) -> None:
        """Serialise a `rosbags` message and write it."""
        raw = TYPESTORE.serialize_cdr(msg, msg.__msgtype__)
        self.write_raw(topic, msg.__msgtype__, log_ns, raw)
