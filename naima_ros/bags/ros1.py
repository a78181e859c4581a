"""ROS 1 `.bag` input for the bag tools: read with `rosbags`' rosbag1 reader and handed on as a
rosbag2 would be, so `run`, `eval` and `replay` read public RGB-D recordings (TUM RGB-D and the
like) without a conversion step.

Each connection is mapped to its ROS 2 message type, as `rosbags-convert` does: the type name as
rosbags normalises it (`sensor_msgs/Image` -> `sensor_msgs/msg/Image`; `tf/tfMessage` ->
`tf2_msgs/msg/TFMessage`), and each message converted byte for byte to CDR (`ros1_to_cdr`: the
Header's `seq` dropped). The ROS 1 and ROS 2 definitions of the types used here lay out the same
fields in the same order and differ only in names (CameraInfo's D, K, R, P are d, k, r, p), so
the CDR bytes deserialise with the ROS 2 type. A type whose layout differs is left out (listed in
`skipped`); a type ROS 2 does not know keeps the bag's own definition. The ROS 1 `latching` flag
is kept in the connection (`ext`): `naima_ros.bags.qos` replays such a topic transient-local.
"""
from __future__ import annotations

from pathlib import Path

from rosbags.interfaces import (Connection, MessageDefinition, MessageDefinitionFormat,
                                Nodetype)
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

__all__ = ["MAGIC", "Ros1Bag", "is_ros1_bag"]

MAGIC = b"#ROSBAG V2.0\n"  # the first bytes of every ROS 1 bag (format 2.0, the only one in use)
RENAMES = {"tf/msg/tfMessage": "tf2_msgs/msg/TFMessage"}  # ROS 1's legacy tf, as rosbags-convert
HEADER = "std_msgs/msg/Header"


def is_ros1_bag(path: Path) -> bool:
    """A file that starts like a ROS 1 bag, or any file named *.bag (a damaged one included)."""
    if not path.is_file():
        return False
    if path.suffix == ".bag":
        return True
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _same_layout(src, dst, src_type: str, dst_type: str) -> bool:
    """Whether two definitions put the same wire types in the same order (names aside)."""
    if src_type == dst_type == HEADER:
        return True  # ros1_to_cdr drops seq; the rest is stamp + frame_id in both
    if src_type not in src.fielddefs or dst_type not in dst.fielddefs:
        return False
    src_fields, dst_fields = src.fielddefs[src_type][1], dst.fielddefs[dst_type][1]
    return len(src_fields) == len(dst_fields) and all(
        _same_field(src, dst, a, b) for (_, a), (_, b) in zip(src_fields, dst_fields))


def _same_field(src, dst, a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == Nodetype.NAME:
        return _same_layout(src, dst, a[1], b[1])
    if a[0] in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return a[1][1] == b[1][1] and _same_field(src, dst, a[1][0], b[1][0])
    (a_type, _), (b_type, _) = a[1], b[1]
    if "string" in (a_type, b_type):
        return a_type == b_type
    return _BASE_SIZES.get(a_type) == _BASE_SIZES.get(b_type)  # ROS 1 byte is int8, ROS 2's uint8


_BASE_SIZES = {**dict.fromkeys(("bool", "byte", "char", "int8", "uint8", "octet"), 1),
               **dict.fromkeys(("int16", "uint16"), 2),
               **dict.fromkeys(("int32", "uint32", "float32"), 4),
               **dict.fromkeys(("int64", "uint64", "float64"), 8)}


class Ros1Bag:
    """A ROS 1 bag with the interface of `rosbags.rosbag2.Reader` that `BagReader` uses: `open`,
    `close`, `connections` (ROS 2 types) and `messages(connections)` yielding CDR bytes.

    Args:
        path: the .bag file.
        typestore: the ROS 2 type store the rest of the tools use.
    """

    def __init__(self, path: Path, typestore):
        self.path, self.typestore = Path(path), typestore
        self._reader = Ros1Reader(self.path)
        self.connections: list[Connection] = []
        self.skipped: dict[str, str] = {}  # topic -> why it is left out
        self._convert: dict[int, tuple[Connection, object]] = {}

    def open(self) -> None:
        self._reader.open()
        # the bag's own (ROS 1) definitions, with ROS 2's Header: what ros1_to_cdr converts with
        ros1 = get_typestore(Stores.EMPTY)
        types = {}
        for conn in self._reader.connections:
            if conn.msgdef.format == MessageDefinitionFormat.MSG and conn.msgdef.data:
                types.update(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        types[HEADER] = self.typestore.fielddefs[HEADER]
        ros1.register(types)
        for conn in self._reader.connections:
            msgtype = RENAMES.get(conn.msgtype, conn.msgtype)
            if conn.msgtype not in ros1.fielddefs:
                self.skipped[conn.topic] = f"{conn.msgtype} has no definition in the bag"
                continue
            if msgtype in self.typestore.fielddefs:
                if not _same_layout(ros1, self.typestore, conn.msgtype, msgtype):
                    self.skipped[conn.topic] = (f"ROS 1 {conn.msgtype} and ROS 2 {msgtype} lay "
                                                f"out their fields differently")
                    continue
                store = self.typestore
            else:  # unknown to ROS 2: the bag's definition describes the converted bytes
                store, msgtype = ros1, conn.msgtype
            view = Connection(
                id=conn.id, topic=conn.topic, msgtype=msgtype,
                msgdef=MessageDefinition(MessageDefinitionFormat.MSG,
                                         store.generate_msgdef(msgtype, ros_version=2)[0]),
                digest=store.hash_rihs01(msgtype), msgcount=conn.msgcount, ext=conn.ext,
                owner=self)
            self.connections.append(view)
            self._convert[conn.id] = (view, lambda raw, t=conn.msgtype: ros1.ros1_to_cdr(raw, t))

    def close(self) -> None:
        self._reader.close()

    def messages(self, connections=()):
        """Yield (ROS 2 connection, log time ns, CDR bytes) in time order."""
        ids = {c.id for c in connections} if connections else set(self._convert)
        wanted = [c for c in self._reader.connections if c.id in ids]
        for conn, log_ns, raw in self._reader.messages(connections=wanted):
            view, convert = self._convert[conn.id]
            yield view, log_ns, convert(raw)
