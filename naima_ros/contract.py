"""The node's contract, as data: its parameters (default, range, choices, description, read-only)
and its topics (name, message type, direction, QoS role), and the validation of parameter values.

ROS-free and torch-free. Everything else reads it:
- the node declares `PARAMETERS` with descriptors (`naima_ros.ros.parameters`), validates changes
  with `check_parameters`, and creates its subscriptions and publishers from `TOPICS`
  (`naima_ros.ros.topics` turns the QoS roles into profiles);
- `naima-bag` takes its option defaults and choices from `DEFAULTS` / `PARAMETERS`, and its topic
  names, and replay's remaps, from `TOPICS`;
- the launch file builds its remap arguments from `TOPICS`;
- config/naima.yaml and docs/node.md (its tables are `markdown_tables()`) are copies that
  test/test_contract.py compares against this module.

Adding a parameter is one `ParameterSpec` here plus its line in config/naima.yaml (the test asks
for it); adding a topic is one `TopicSpec`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from naima_ros.confidence import DEFAULT_MIN_CONFIDENCE
from naima_ros.options import BASELINE_METHODS, METHODS, PRECISIONS, SCALES
from naima_ros.registration import rotation_from_quaternion

__all__ = [
    "DEFAULTS",
    "MODEL_PARAMETERS",
    "OUTPUT_NAMESPACE",
    "PARAMETERS",
    "QOS_ROLES",
    "TOPICS",
    "ParameterSpec",
    "QosRole",
    "TopicSpec",
    "RENAMED_PARAMETERS",
    "STAMP_SOURCES",
    "check_parameters",
    "encoding_topic",
    "markdown_tables",
    "parameter",
]

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
RGB_TRANSPORTS = ("raw", "compressed")  # image_transport's names; also the topic suffix
DEPTH_TRANSPORTS = ("raw", "compressedDepth")
OUTPUT_ENCODINGS = ("32FC1", "16UC1")
STAMP_SOURCES = ("depth", "rgb")


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: its default, meaning and allowed values.

    `int_range` / `float_range` become the ROS descriptor's ranges (rclpy enforces them);
    `choices` is enforced by `check_parameters` (on each item of a list) and shown in the
    descriptor's `additional_constraints`. An empty list default is a string array that is not set
    (ROS cannot type an empty list, and a params file's `[]` sets nothing).
    """

    name: str
    default: object
    description: str
    int_range: tuple[int, int, int] | None = None  # (from, to, step)
    float_range: tuple[float, float] | None = None
    choices: tuple | None = None
    read_only: bool = False  # fixed at start-up (topics, QoS and synchronizer are built once)


PARAMETERS = (
    ParameterSpec("method", "naima", "what upsamples: naima (the network) or a classical "
                  f"baseline ({', '.join(BASELINE_METHODS)}: no torch, no checkpoint); changing it "
                  "swaps the model", choices=METHODS),
    # a ROS IntegerRange is from/to/step: 4..16 step 4 is the tightest it can say, and admits 12;
    # `choices` (check_parameters) rejects 12
    ParameterSpec("scale", 8, "super-resolution factor, one of "
                  f"{', '.join(map(str, SCALES))}; must equal the checkpoint's; changing it loads "
                  "a new model (the declared range 4..16 step 4 also admits 12, which is "
                  "rejected: a ROS integer range cannot express the set)",
                  int_range=(4, 16, 4), choices=SCALES),
    ParameterSpec("checkpoint", "shipped",
                  "NAIMA .safetensors checkpoint, or 'shipped': the package's model for the scale "
                  "(naima_ros.resources.SHIPPED_CHECKPOINTS), or 'sensor': its model trained mostly on "
                  "simulated ToF input (SENSOR_CHECKPOINTS: a little better on ToF input than 'shipped', "
                  "worse on clean input); '{scale}' is "
                  "replaced by the scale; a relative path is looked up in the current directory, then "
                  "in the package share directory"),
    ParameterSpec("device", "auto", "torch device: auto, cpu, cuda or cuda:N"),
    ParameterSpec("precision", "auto", "auto, fp32, bf16 or fp16 (auto: fp16 on CUDA, fp32 on "
                  "CPU)", choices=PRECISIONS),
    ParameterSpec("torch_threads", 0, "torch intra-op threads; 0: one per core (measured "
                  "fastest in the node: its executor needs a tenth of a core; naima_ros.runtime)",
                  int_range=(0, 256, 1), read_only=True),
    ParameterSpec("queue_size", 5, "synchronizer queue per input (messages)",
                  int_range=(1, 100, 1), read_only=True),
    ParameterSpec("slop", 0.02, "approximate sync: largest stamp spread of an RGB/depth pair (s)",
                  float_range=(0.0, 1.0), read_only=True),
    ParameterSpec("exact_sync", False, "pair only identical stamps", read_only=True),
    ParameterSpec("output_encoding", "32FC1", "encoding of depth_registered/image_rect: 32FC1 "
                  "(metres, NaN invalid) or 16UC1 (mm, 0 invalid)", choices=OUTPUT_ENCODINGS),
    ParameterSpec("output_encodings", [], "more depth outputs, one topic per listed encoding "
                  "(32FC1, 16UC1): depth_registered/image_rect_32fc1, "
                  "depth_registered/image_rect_16uc1, e.g. [32FC1, 16UC1] for consumers of each; "
                  "stamp, frame_id and depth_registered/camera_info as image_rect's, which keeps "
                  "output_encoding", choices=OUTPUT_ENCODINGS, read_only=True),
    ParameterSpec("stamp_source", "depth", "the stamp of every output: the depth image's "
                  "(depth) or the RGB image's (rgb, for consumers that sync exactly with the RGB)",
                  choices=STAMP_SOURCES),
    ParameterSpec("publish_points", True, "publish depth_registered/points"),
    ParameterSpec("points_stride", 1, "keep every n-th row and column in the cloud",
                  int_range=(1, 16, 1)),
    ParameterSpec("points_rgb", True, "XYZRGB cloud (32-byte points) instead of XYZ (16-byte)"),
    ParameterSpec("min_depth", 0.1, "depth below this is invalid, in and out (m)",
                  float_range=(0.0, 100.0)),
    ParameterSpec("max_depth", 10.0, "depth above this is invalid, in and out (m)",
                  float_range=(0.0, 100.0)),
    ParameterSpec("warmup_iterations", 1, "model passes run before the node reports ready",
                  int_range=(0, 100, 1)),
    ParameterSpec("warmup_width", 640, "output width of the warm-up frames (px)",
                  int_range=(16, 8192, 1)),
    ParameterSpec("warmup_height", 480, "output height of the warm-up frames (px)",
                  int_range=(16, 8192, 1)),
    ParameterSpec("resize_rgb_to_multiple", False, "resize the RGB to scale x the depth size when "
                  "it is not exactly that, and publish at that size (earlier versions); off: any "
                  "depth with the RGB's aspect ratio is put on the RGB's grid (binned or "
                  "resampled) and the output has the RGB's size"),
    ParameterSpec("min_confidence", DEFAULT_MIN_CONFIDENCE, "publish a depth pixel that had no valid "
                  "input depth under it (a filled hole) only from this confidence on (the "
                  "probability, calibrated, that it is within 2 cm + 2 % of the truth; "
                  "depth_registered/confidence); pixels with valid input are always published; "
                  "0 fills every hole, 1 none (the square holes of earlier versions)",
                  float_range=(0.0, 1.0)),
    ParameterSpec("max_input_pixels", 3840 * 2160, "larger RGB or depth frames are dropped "
                  "(pixels)", int_range=(1, 2**31 - 1, 1)),
    ParameterSpec("diagnostic_updater.period", 1.0, "seconds between /diagnostics messages "
                  "(diagnostic_updater's parameter; the old name diagnostics_period still works, "
                  "with a deprecation warning)", float_range=(0.05, 60.0), read_only=True),
    ParameterSpec("expected_rate_min", 0.0, "the lowest acceptable rate of served frames (Hz): "
                  "the output's topic status WARNs below expected_rate_min x (1 - "
                  "expected_rate_tolerance), and is an ERROR when nothing was served for 5 "
                  "periods", float_range=(0.0, 1000.0), read_only=True),
    ParameterSpec("expected_rate_max", 0.0, "the highest acceptable rate of served frames (Hz), "
                  "WARN above expected_rate_max x (1 + expected_rate_tolerance); 0: no upper "
                  "bound", float_range=(0.0, 1000.0), read_only=True),
    ParameterSpec("expected_rate_tolerance", 0.1, "relative slack on both rate bounds "
                  "(diagnostic_updater's FrequencyStatus tolerance)", float_range=(0.0, 1.0),
                  read_only=True),
    ParameterSpec("max_stamp_age", 5.0, "the oldest acceptable output: ROS time at publication "
                  "minus the depth stamp (s); older is a WARN in the output's topic status",
                  float_range=(0.0, 3600.0), read_only=True),
    ParameterSpec("self_check_tolerance", 0.05, "self-check: an LR pixel whose output, "
                  "area-averaged back onto the LR grid, differs from the input by more than this "
                  "(m) or self_check_relative_tolerance x depth, whichever is larger, is beyond "
                  "tolerance", float_range=(0.0, 10.0), read_only=True),
    ParameterSpec("self_check_relative_tolerance", 0.02, "self-check: tolerance relative to the "
                  "input depth (ToF noise grows with distance)", float_range=(0.0, 1.0),
                  read_only=True),
    ParameterSpec("self_check_jump_factor", 3.0, "self-check: WARN when the recent RMSE against "
                  "the input exceeds this many times its own running median (and 5 cm)",
                  float_range=(1.0, 1000.0), read_only=True),
    ParameterSpec("warn_throttle", 5.0, "seconds between two warnings of the same kind",
                  float_range=(0.0, 3600.0)),
    ParameterSpec("rgb_transport", "raw", "raw (sensor_msgs/Image on rgb/image_rect_color) or "
                  "compressed (jpeg/png sensor_msgs/CompressedImage on "
                  "<rgb/image_rect_color>/compressed), as image_transport names them",
                  choices=RGB_TRANSPORTS, read_only=True),
    ParameterSpec("depth_transport", "raw", "raw (sensor_msgs/Image on the depth topic) or "
                  "compressedDepth (compressed_depth_image_transport PNG on "
                  "<depth topic>/compressedDepth)", choices=DEPTH_TRANSPORTS, read_only=True),
    ParameterSpec("register_depth", False, "the depth is not registered to the RGB camera: "
                  "reproject it with depth/camera_info and the depth -> RGB extrinsics (tf2 or "
                  "depth_to_rgb_*; input depth/image_rect instead of depth_registered/image_rect)",
                  read_only=True),
    ParameterSpec("use_tf", True, "register_depth: look the extrinsics up in tf2 (RGB frame <- "
                  "depth frame at the depth stamp) where tf2_ros is installed, the depth_to_rgb_* "
                  "parameters standing in when the lookup fails; false: the parameters override "
                  "tf2", read_only=True),
    ParameterSpec("expected_depth_frame", "", "register_depth: the depth image's frame_id the "
                  "extrinsics describe; another frame_id is a warning and a WARN status (empty: "
                  "any)"),
    ParameterSpec("depth_to_rgb_translation", [0.0, 0.0, 0.0], "register_depth: t of p_rgb = "
                  "R p_depth + t, metres (tf2_echo <rgb optical frame> <depth optical frame>)"),
    ParameterSpec("depth_to_rgb_rotation", [0.0, 0.0, 0.0, 1.0], "register_depth: R of "
                  "p_rgb = R p_depth + t as a quaternion x, y, z, w"),
)
DEFAULTS = {p.name: p.default for p in PARAMETERS}
# the parameters that select the model: changing one loads (and warms up) a new one
MODEL_PARAMETERS = ("method", "scale", "checkpoint", "device", "precision")
# old name -> new name: still accepted (read at start-up, with a deprecation warning)
RENAMED_PARAMETERS = {"diagnostics_period": "diagnostic_updater.period"}
_BY_NAME = {p.name: p for p in PARAMETERS}


def parameter(name: str) -> ParameterSpec:
    """The spec of the parameter `name` (KeyError if there is none)."""
    return _BY_NAME[name]


def check_parameters(new: Mapping, current: Mapping) -> str | None:
    """Why the changed values `new` (over `current`) are not acceptable, or None.

    The cheap, model-independent rules; ranges are also enforced by the node's descriptors.
    Whether a checkpoint exists and fits is `naima_ros.model_slot.check_spec`.
    """
    def value(name):
        return new[name] if name in new else current[name]

    if "device" in new and not DEVICE_RE.match(str(new["device"])):
        return f"device must be auto, cpu, cuda or cuda:N, got {new['device']!r}"
    for p in PARAMETERS:
        if not p.choices or p.name not in new:
            continue
        values = list(new[p.name]) if isinstance(p.default, list) else [new[p.name]]
        bad = [v for v in values if v not in p.choices]
        if bad:
            each = "each item of " if isinstance(p.default, list) else ""
            return (f"{each}{p.name} must be one of {', '.join(map(str, p.choices))}, "
                    f"got {bad[0]!r}")
    if ({"expected_rate_min", "expected_rate_max"} & set(new)) and value("expected_rate_max") \
            and value("expected_rate_max") < value("expected_rate_min"):
        return (f"expected_rate_max ({value('expected_rate_max')}) must be 0 (no bound) or at "
                f"least expected_rate_min ({value('expected_rate_min')})")
    if value("min_depth") >= value("max_depth"):
        return (f"min_depth ({value('min_depth')}) must be below max_depth "
                f"({value('max_depth')})")
    if "depth_to_rgb_translation" in new and len(new["depth_to_rgb_translation"]) != 3:
        return (f"depth_to_rgb_translation must be 3 numbers (x, y, z in m), got "
                f"{list(new['depth_to_rgb_translation'])}")
    if "depth_to_rgb_rotation" in new:
        try:
            if len(new["depth_to_rgb_rotation"]) != 4:
                raise ValueError("must be 4 numbers")
            rotation_from_quaternion(new["depth_to_rgb_rotation"])
        except ValueError as exc:
            return (f"depth_to_rgb_rotation must be a quaternion x, y, z, w: "
                    f"{list(new['depth_to_rgb_rotation'])} {exc}")
    return None


# ---------------------------------------------------------------------- topics
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"  # image_transport's compressed[Depth]
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"


@dataclass(frozen=True)
class QosRole:
    """The default QoS of a kind of topic (keep last `depth`, volatile). Every publisher and
    subscription also has the standard read-only qos_overrides./<topic>.<entity>.* parameters."""

    reliability: str  # "best_effort" or "reliable"
    depth: int
    why: str


QOS_ROLES = {
    "sensor_data": QosRole("best_effort", 5, "SensorDataQoS, as camera drivers publish"),
    "reliable": QosRole("reliable", 5, "RViz and recorders receive it with their defaults"),
    "diagnostics": QosRole("reliable", 10, "as diagnostic_updater publishes"),
}
OUTPUT_NAMESPACE = "depth_registered"  # the launch file's `output_prefix` replaces it


def encoding_topic(encoding: str) -> str:
    """The topic of one `output_encodings` entry: a sibling of image_rect, so that
    image_transport's CameraSubscriber pairs it with depth_registered/camera_info."""
    return f"{OUTPUT_NAMESPACE}/image_rect_{encoding.lower()}"


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the node.

    Attributes:
        role: the key everything else uses (also `naima_ros.bags.io.Topics`' field name).
        name: relative and remappable (depth_image_proc / REP 118 names), absolute if it starts
            with "/".
        msg_type: "pkg/msg/Name".
        direction: "in" (subscribed) or "out" (published).
        qos: its QoS role, a key of `QOS_ROLES`.
        description: what it carries.
        launch_argument: the launch file's argument that remaps it (an output under
            depth_registered/ follows the launch file's `output_prefix` unless it is set).
    """

    role: str
    name: str
    msg_type: str
    direction: str
    qos: str
    description: str
    launch_argument: str

    @property
    def absolute(self) -> str:
        """The name in the root namespace, as a bag records it."""
        return self.name if self.name.startswith("/") else "/" + self.name


TOPICS = {t.role: t for t in (
    TopicSpec("rgb", "rgb/image_rect_color", IMAGE, "in", "sensor_data",
              "colour image: rgb8, bgr8, rgba8, bgra8 or mono8 (rgb_transport compressed: "
              "<topic>/compressed)", "rgb_topic"),
    TopicSpec("rgb_info", "rgb/camera_info", CAMERA_INFO, "in", "sensor_data",
              "CameraInfo of the colour image", "rgb_info_topic"),
    TopicSpec("depth", "depth/image_rect", IMAGE, "in", "sensor_data",
              "LR depth registered to the colour camera (or not, with register_depth): 16UC1 / "
              "mono16 mm with 0 invalid, 32FC1 m with NaN/inf/<=0 invalid (depth_transport "
              "compressedDepth: <topic>/compressedDepth)", "depth_topic"),
    TopicSpec("depth_info", "depth/camera_info", CAMERA_INFO, "in", "sensor_data",
              "CameraInfo of the depth image (only with register_depth)", "depth_info_topic"),
    TopicSpec("out_image", f"{OUTPUT_NAMESPACE}/image_rect", IMAGE, "out", "reliable",
              "super-resolved depth in output_encoding: 32FC1 m NaN invalid, or 16UC1 mm 0 "
              "invalid", "output_image_topic"),
    *(TopicSpec(f"out_image_{encoding.lower()}", encoding_topic(encoding), IMAGE, "out",
                "reliable", f"the super-resolved depth in {encoding} (only when "
                f"output_encodings lists it)", f"output_image_{encoding.lower()}_topic")
      for encoding in OUTPUT_ENCODINGS),
    TopicSpec("out_confidence", f"{OUTPUT_NAMESPACE}/confidence", IMAGE, "out", "reliable",
              "per-pixel confidence of the depth, 32FC1 in [0, 1] (0 where the depth is NaN), "
              "same header and grid as image_rect", "output_confidence_topic"),
    TopicSpec("out_info", f"{OUTPUT_NAMESPACE}/camera_info", CAMERA_INFO, "out", "reliable",
              "the RGB CameraInfo rescaled to the output size (K, P with Tx, ROI, binning)",
              "output_info_topic"),
    TopicSpec("out_points", f"{OUTPUT_NAMESPACE}/points", POINT_CLOUD, "out", "reliable",
              "organised PointCloud2, PCL layout, XYZRGB (32-byte points) or XYZ (16), NaN "
              "invalid", "output_points_topic"),
    TopicSpec("diagnostics", "/diagnostics", DIAGNOSTIC_ARRAY, "out", "diagnostics",
              "status (model, rates, latency, drops by reason, extrinsics), the output's topic "
              "status (rate, stamp age) and its self-check", "diagnostics_topic"),
)}


# ---------------------------------------------------------------------- documentation
def _cell(value) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("|", "\\|")


def markdown_tables() -> str:
    """The parameter and topic tables of docs/node.md (`python -m naima_ros.contract`)."""
    rows = ["| parameter | default | allowed | read-only | description |", "|---|---|---|---|---|"]
    for p in PARAMETERS:
        allowed = (", ".join(map(str, p.choices)) if p.choices else
                   f"{p.int_range[0]}..{p.int_range[1]}" + (f" step {p.int_range[2]}"
                                                             if p.int_range[2] != 1 else "")
                   if p.int_range else f"{p.float_range[0]}..{p.float_range[1]}"
                   if p.float_range else "")
        rows.append(f"| `{p.name}` | `{_cell(p.default)}` | {_cell(allowed)} | "
                    f"{'yes' if p.read_only else ''} | {_cell(p.description)} |")
    rows += ["", "| topic | direction | type | QoS | carries |", "|---|---|---|---|---|"]
    for t in TOPICS.values():
        q = QOS_ROLES[t.qos]
        rows.append(f"| `{t.name}` | {t.direction} | `{t.msg_type}` | {q.reliability.replace('_', ' ')}, "
                    f"keep last {q.depth} | {_cell(t.description)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_tables(), end="")
