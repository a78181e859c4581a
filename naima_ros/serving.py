"""What the depth node does with one RGB + LR depth pair, ROS-free: the node and `naima-bag run`
both call it, so an offline run measures what the robot runs.

One pair goes through, in this order (the first failed check drops it with a `Drop` reason):

1. stamps: a zero stamp is `zero_stamp`; a depth stamp not newer than the last served one is
   `stamp_backwards`, unless it is more than `TIME_JUMP_RESET_S` older (a clock reset, a bag loop,
   a restarted driver): then time restarts and a `time_jump_reset` event is reported;
2. `missing_camera_info`, `empty_image`, `unsupported_encoding`, `oversized`
   (`max_input_pixels`), then decoding (`malformed_image`); compressed inputs
   (`rgb_transport` compressed, `depth_transport` compressedDepth: `naima_ros.image_transport`)
   are decoded first, and a header declaring more than `max_input_pixels` is `oversized` before
   any pixel is decoded;
   with `register_depth`, the depth is then reprojected onto the RGB camera's grid at LR
   resolution (`naima_ros.registration`: z-buffer, holes invalid) with the depth CameraInfo
   and the `depth_to_rgb_*` extrinsics (no depth CameraInfo: `missing_camera_info`);
3. sizes: any depth whose aspect ratio matches the RGB's (within `frames.ASPECT_TOLERANCE`) is
   served at the RGB's size: an integer fraction as it is, depth on the RGB's grid binned, any
   other size resampled onto the model's grid (`naima_ros.frames`); aspect ratios that disagree
   are `size_mismatch`. With `resize_rgb_to_multiple` (the behaviour of earlier versions) the RGB is
   resized to scale x depth instead and the output has that size. The CameraInfo must describe the
   RGB as received and hold usable intrinsics (`invalid_camera_info`);
4. depth outside [min_depth, max_depth] is invalid; none valid is `all_invalid_depth`;
5. the predictor's `predict` (`inference_error` if it raises) with `min_confidence`: depth where
   published and a per-pixel confidence; output outside the range is NaN;
6. outputs (`FrameServer.outputs`, the one place that builds them): the depth encoded in
   `output_encoding` and in each of `output_encodings`, the confidence (32FC1, 0 where there is
   no depth), the CameraInfo of the output image, if asked the organised point array (PCL
   layout) from `naima_ros.geometry`, and the stamp of every output (`stamp_source`: the depth's
   or the RGB's).

Images and CameraInfo are read through their `sensor_msgs` field names only (data, encoding,
height, width, step, is_bigendian; k, p, d, r, roi, binning...), so rclpy messages and `rosbags`
messages both go in as they are. Nothing here imports torch or ROS.

The parameters it reads (`ServeConfig`) are the node's, declared in `naima_ros.contract`; the
drop reasons are `naima_ros.drops`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np

from naima_ros.contract import DEFAULTS
from naima_ros.confidence import Prediction
from naima_ros.depth_codec import (COLOR_ENCODINGS, DEPTH_ENCODINGS, EncodedImage, decode_color,
                                   decode_depth, encode_32fc1, encode_depth)
from naima_ros.drops import Drop
from naima_ros.frames import depth_grid, valid_depth_mask
from naima_ros.geometry import (Intrinsics, depth_to_points, image_size, output_intrinsics,
                                resize_rgb)
from naima_ros.image_transport import decode_compressed_color, decode_compressed_depth
from naima_ros.registration import register_depth

__all__ = [
    "FrameServer",
    "OutputCameraInfo",
    "ServeConfig",
    "ServedFrame",
    "camera_info_image_size",
    "decode_images",
    "output_camera_info",
    "point_fields",
    "stamp_ns",
]

TIME_JUMP_RESET_S = 1.0  # a stamp this far behind the last served one is a clock reset / bag loop
POINT_FIELD_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@dataclass(frozen=True)
class ServeConfig:
    """The parameters that decide which pairs are served and what the outputs look like."""

    output_encoding: str = DEFAULTS["output_encoding"]
    output_encodings: tuple = tuple(DEFAULTS["output_encodings"])
    min_confidence: float = DEFAULTS["min_confidence"]
    stamp_source: str = DEFAULTS["stamp_source"]
    publish_points: bool = DEFAULTS["publish_points"]
    points_stride: int = DEFAULTS["points_stride"]
    points_rgb: bool = DEFAULTS["points_rgb"]
    min_depth: float = DEFAULTS["min_depth"]
    max_depth: float = DEFAULTS["max_depth"]
    resize_rgb_to_multiple: bool = DEFAULTS["resize_rgb_to_multiple"]
    max_input_pixels: int = DEFAULTS["max_input_pixels"]
    slop: float = DEFAULTS["slop"]
    exact_sync: bool = DEFAULTS["exact_sync"]
    rgb_transport: str = DEFAULTS["rgb_transport"]
    depth_transport: str = DEFAULTS["depth_transport"]
    register_depth: bool = DEFAULTS["register_depth"]
    depth_to_rgb_translation: tuple = tuple(DEFAULTS["depth_to_rgb_translation"])
    depth_to_rgb_rotation: tuple = tuple(DEFAULTS["depth_to_rgb_rotation"])

    @classmethod
    def from_values(cls, values: Mapping) -> ServeConfig:
        """The config of a parameter mapping (e.g. the node's current values)."""
        def frozen(v):  # arrays (ROS double and string arrays) as tuples: a config is immutable
            if isinstance(v, (str, bool, int, float)):
                return v
            return tuple(x if isinstance(x, str) else float(x) for x in v)

        return cls(**{f.name: frozen(values[f.name]) for f in fields(cls) if f.name in values})


class OutputCameraInfo(NamedTuple):
    """The fields of the output `sensor_msgs/CameraInfo` (no ROI, no binning)."""

    height: int
    width: int
    distortion_model: str
    d: list
    k: np.ndarray  # 9 float64
    r: np.ndarray  # 9 float64
    p: np.ndarray  # 12 float64


@dataclass(frozen=True)
class ServedFrame:
    """Everything the node publishes for one pair, built by `FrameServer.outputs`: stamped
    `stamp_ns` (the depth's or the RGB's, `stamp_source`), in the RGB camera's frame (the output is
    on the RGB camera's grid, with its K and P)."""

    depth_m: np.ndarray  # (H, W) float32 metres, NaN invalid
    image: EncodedImage  # depth_registered/image_rect, in output_encoding
    camera_info: OutputCameraInfo  # depth_registered/camera_info
    points: np.ndarray | None  # depth_registered/points payload (PCL layout), if asked
    intrinsics: Intrinsics
    model_s: float  # time in the predictor
    frame_id: str  # the RGB image's header.frame_id: the frame of every output
    stamp_ns: int  # the header stamp of every output
    depth_lr_m: np.ndarray  # (h, w) float32 metres, NaN invalid: what the predictor took
    # output_encodings: {encoding: the depth in it}, each for its own topic (contract.encoding_topic)
    encodings: Mapping[str, EncodedImage] = field(default_factory=dict)
    confidence: np.ndarray | None = None  # (H, W) float32 in [0, 1], 0 where depth_m is NaN
    confidence_image: EncodedImage | None = None  # depth_registered/confidence (32FC1)


def stamp_ns(stamp) -> int:
    """A `builtin_interfaces/Time` (anything with sec and nanosec) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def point_fields(points: np.ndarray) -> list[tuple[str, int, int, int]]:
    """(name, offset, datatype, count) of each `PointField` describing a point array."""
    return [(name, points.dtype.fields[name][1], POINT_FIELD_FLOAT32, 1)
            for name in points.dtype.names]


def _roi(info) -> tuple[int, int, int, int]:
    r = info.roi
    return (int(r.x_offset), int(r.y_offset), int(r.width), int(r.height))


def camera_info_image_size(info) -> tuple[int, int]:
    """(width, height) of the image a CameraInfo describes, after its ROI and binning."""
    return image_size(info.width, info.height, binning_x=info.binning_x,
                      binning_y=info.binning_y, roi=_roi(info))


def output_camera_info(info, out_width: int, out_height: int
                       ) -> tuple[OutputCameraInfo, Intrinsics]:
    """The CameraInfo of an out_width x out_height image made from the camera's image.

    K and P (Tx included) are folded through the input ROI and binning and rescaled; the result
    describes the output image exactly, so it has no ROI and no binning. D, R and the distortion
    model are kept (the images are rectified).

    Raises:
        ValueError: NaN/inf or degenerate intrinsics, or an ROI outside the calibration image.
    """
    intr = output_intrinsics(info.k, info.p, info.width, info.height, out_width, out_height,
                             binning_x=info.binning_x, binning_y=info.binning_y, roi=_roi(info))
    fields_ = OutputCameraInfo(height=out_height, width=out_width,
                               distortion_model=info.distortion_model,
                               d=[float(v) for v in info.d], k=intr.k.reshape(-1),
                               r=np.asarray(info.r, dtype=np.float64), p=intr.p.reshape(-1))
    return fields_, intr


def decode_images(rgb_msg, depth_msg, max_pixels: int = DEFAULTS["max_input_pixels"],
                  rgb_transport: str = "raw", depth_transport: str = "raw"):
    """(rgb (H, W, 3) uint8 writable, depth_m (h, w) float32 NaN invalid, valid (h, w)) of two
    `sensor_msgs/Image`-likes, or `CompressedImage`-likes (format, data) with `rgb_transport`
    compressed / `depth_transport` compressedDepth, checked in the node's order.

    Raises:
        Drop: `empty_image`, `unsupported_encoding`, `oversized` or `malformed_image`.
    """
    inputs = (("rgb", rgb_msg, COLOR_ENCODINGS, rgb_transport),
              ("depth", depth_msg, DEPTH_ENCODINGS, depth_transport))
    raw = [(name, msg, known) for name, msg, known, transport in inputs if transport == "raw"]
    for name, msg, _ in raw:
        if msg.height == 0 or msg.width == 0 or len(msg.data) == 0:
            raise Drop("empty_image", f"{name} image is {msg.width}x{msg.height} with "
                       f"{len(msg.data)} bytes")
    for name, msg, _, transport in inputs:
        if transport != "raw" and len(msg.data) == 0:
            raise Drop("empty_image", f"{name} {transport} image has no data")
    for name, msg, known in raw:
        if msg.encoding not in known:
            raise Drop("unsupported_encoding", f"{name} encoding {msg.encoding!r} is not "
                       f"supported (use one of {', '.join(known)})")
    for name, msg, _ in raw:
        if msg.width * msg.height > max_pixels:
            raise Drop("oversized", f"{name} image {msg.width}x{msg.height} exceeds "
                       f"max_input_pixels={max_pixels}")
    try:  # compressed: the header's size is checked against max_pixels before decoding
        if rgb_transport == "raw":
            rgb = decode_color(rgb_msg.data, rgb_msg.encoding, rgb_msg.height, rgb_msg.width,
                               rgb_msg.step, bool(rgb_msg.is_bigendian))
        else:
            rgb = decode_compressed_color(bytes(rgb_msg.data), rgb_msg.format,
                                          max_input_pixels=max_pixels)
        if depth_transport == "raw":
            depth_m, valid = decode_depth(depth_msg.data, depth_msg.encoding, depth_msg.height,
                                          depth_msg.width, depth_msg.step,
                                          bool(depth_msg.is_bigendian))
        else:
            depth_m, valid = decode_compressed_depth(bytes(depth_msg.data), depth_msg.format,
                                                     max_input_pixels=max_pixels)
    except ValueError as exc:  # raw decoding; compressed decoding raises Drop itself
        raise Drop("malformed_image", str(exc)) from exc
    if not rgb.flags.writeable:  # a view of read-only message bytes; predictors may write
        rgb = rgb.copy()
    return rgb, depth_m, valid


class FrameServer:
    """The per-pair policy of the module docstring, with the state it keeps across pairs.

    Args:
        on_event: `on_event(name, message)` for what is not a drop but worth counting and telling
            (`time_jump_reset`).
    """

    def __init__(self, on_event: Callable[[str, str], None] | None = None):
        self.last_stamp: int | None = None  # depth stamp of the last served pair (ns)
        self._on_event = on_event or (lambda name, message: None)

    def reset_time(self) -> None:
        """Forget the last served stamp (a restarted publisher may restart its clock)."""
        self.last_stamp = None

    def _check_stamps(self, rgb_msg, depth_msg) -> int:
        t_depth, t_rgb = stamp_ns(depth_msg.header.stamp), stamp_ns(rgb_msg.header.stamp)
        if t_depth == 0 or t_rgb == 0:
            raise Drop("zero_stamp", f"zero header stamp (rgb {t_rgb} ns, depth {t_depth} ns)")
        if self.last_stamp is not None and t_depth <= self.last_stamp:
            back_s = (self.last_stamp - t_depth) / 1e9
            if back_s <= TIME_JUMP_RESET_S:
                raise Drop("stamp_backwards", f"depth stamp {t_depth / 1e9:.6f} s is not newer "
                           f"than the last served {self.last_stamp / 1e9:.6f} s")
            self._on_event("time_jump_reset", f"time jumped back by {back_s:.3f} s (clock "
                           f"reset, bag loop or restarted driver): serving from the new time")
        return t_depth

    @staticmethod
    def _fit_sizes(rgb: np.ndarray, depth_m: np.ndarray, scale: int, info,
                   config: ServeConfig):
        s = scale
        (rgb_h, rgb_w), (h, w) = rgb.shape[:2], depth_m.shape
        try:  # the aspect ratios must agree; any size with the RGB's aspect ratio is served
            depth_grid((rgb_h, rgb_w), (h, w), s)
        except ValueError as exc:
            raise Drop("size_mismatch", f"{exc} (model scale {s})") from exc
        out_w, out_h = rgb_w, rgb_h
        if config.resize_rgb_to_multiple and (rgb_h, rgb_w) != (s * h, s * w):
            out_w, out_h = s * w, s * h  # earlier versions: the RGB resized to scale x depth
            rgb = resize_rgb(rgb, out_w, out_h)
        info_size = camera_info_image_size(info)
        if info_size != (rgb_w, rgb_h):
            raise Drop("invalid_camera_info", f"rgb camera_info describes a {info_size[0]}x"
                       f"{info_size[1]} image (size, roi, binning) but rgb is {rgb_w}x{rgb_h}")
        try:
            camera_info, intr = output_camera_info(info, out_w, out_h)
        except ValueError as exc:
            raise Drop("invalid_camera_info", str(exc)) from exc
        return rgb, camera_info, intr

    @staticmethod
    def register(depth_m: np.ndarray, rgb_size: tuple[int, int], scale: int, info, depth_info,
                 config: ServeConfig) -> np.ndarray:
        """The depth reprojected onto the RGB camera's grid at LR resolution (also what
        `naima-bag eval` gives its baselines); raises Drop as `serve` does."""
        if depth_info is None:
            raise Drop("missing_camera_info", "no depth CameraInfo received yet "
                       "(register_depth needs depth/camera_info)")
        h, w = depth_m.shape
        info_size = camera_info_image_size(depth_info)
        if info_size != (w, h):
            raise Drop("invalid_camera_info", f"depth camera_info describes a {info_size[0]}x"
                       f"{info_size[1]} image (size, roi, binning) but depth is {w}x{h}")
        out_w, out_h = rgb_size[0] // scale, rgb_size[1] // scale
        try:
            # both cameras through P, Tx/Ty included (depth_image_proc's register)
            p_depth = output_intrinsics(depth_info.k, depth_info.p, depth_info.width,
                                        depth_info.height, w, h,
                                        binning_x=depth_info.binning_x,
                                        binning_y=depth_info.binning_y, roi=_roi(depth_info)).p
            p_rgb = output_intrinsics(info.k, info.p, info.width, info.height, out_w, out_h,
                                      binning_x=info.binning_x, binning_y=info.binning_y,
                                      roi=_roi(info)).p
            registered, _ = register_depth(depth_m, p_depth, p_rgb, (out_w, out_h),
                                           config.depth_to_rgb_translation,
                                           config.depth_to_rgb_rotation)
        except ValueError as exc:
            raise Drop("invalid_camera_info", f"cannot register the depth: {exc}") from exc
        return registered

    @staticmethod
    def outputs(prediction: Prediction, depth_lr: np.ndarray, rgb: np.ndarray,
                camera_info: OutputCameraInfo, intr: Intrinsics, model_s: float, rgb_msg,
                depth_msg, config: ServeConfig) -> ServedFrame:
        """Every output of a served pair, from the predictor's answer (the one place that builds
        them).

        Args:
            prediction: (H, W) the predictor's depth in metres (outside [min_depth, max_depth] it
                becomes NaN) and confidence (0 wherever the published depth is NaN).
            depth_lr: (h, w) the LR depth the predictor took (registered, range-masked).
            rgb: (H, W, 3) uint8, the colour of the XYZRGB cloud.
            camera_info, intr: the output image's CameraInfo and camera model.
            model_s: time in the predictor.
            rgb_msg, depth_msg: the pair (frame_id and stamps).
            config: the current parameters.
        """
        min_d, max_d = config.min_depth, config.max_depth
        in_range = valid_depth_mask(prediction.depth, min_d, max_d)
        depth_hr = np.where(in_range, prediction.depth, np.float32(np.nan)).astype(np.float32, copy=False)
        confidence = np.where(in_range, prediction.confidence, np.float32(0.0)).astype(np.float32, copy=False)
        encoded = {e: encode_depth(depth_hr, e) for e in
                   dict.fromkeys((config.output_encoding, *config.output_encodings))}
        points = None
        if config.publish_points:
            # P's fx, fy, cx, cy: the cloud depth_image_proc makes from the published outputs
            points = depth_to_points(depth_hr, intr.fx, intr.fy, intr.cx, intr.cy,
                                     rgb=rgb if config.points_rgb else None,
                                     stride=config.points_stride)
        stamped = rgb_msg if config.stamp_source == "rgb" else depth_msg
        return ServedFrame(depth_hr, encoded[config.output_encoding], camera_info, points, intr,
                           model_s, str(rgb_msg.header.frame_id), stamp_ns(stamped.header.stamp),
                           depth_lr, {e: encoded[e] for e in config.output_encodings},
                           confidence, encode_32fc1(confidence))

    def serve(self, predictor, rgb_msg, depth_msg, info, config: ServeConfig,
              depth_info=None) -> ServedFrame:
        """Serve one pair.

        Args:
            predictor: `predictor.predict(rgb uint8 (H, W, 3), depth metres (h, w) NaN invalid,
                min_confidence=...) -> naima_ros.confidence.Prediction` (depth float32 (H, W)
                metres, confidence), with `.scale` (`naima_ros.predictors`).
            rgb_msg, depth_msg: `sensor_msgs/Image`-like (rclpy or rosbags).
            info: the newest RGB `sensor_msgs/CameraInfo`-like, or None.
            config: the current parameters.
            depth_info: the newest depth CameraInfo-like (used with `config.register_depth`).

        Raises:
            Drop: the pair is not served; `reason` says why.
        """
        t_depth = self._check_stamps(rgb_msg, depth_msg)
        if info is None:
            raise Drop("missing_camera_info", "no CameraInfo received yet for the RGB camera")
        rgb, depth_m, _ = decode_images(rgb_msg, depth_msg, config.max_input_pixels,
                                        config.rgb_transport, config.depth_transport)
        s = int(predictor.scale)
        if config.register_depth:
            depth_m = self.register(depth_m, (rgb.shape[1], rgb.shape[0]), s, info, depth_info,
                                     config)
        rgb, camera_info, intr = self._fit_sizes(rgb, depth_m, s, info, config)

        min_d, max_d = config.min_depth, config.max_depth
        h, w = depth_m.shape
        valid = valid_depth_mask(depth_m, min_d, max_d)  # decoded invalid pixels are NaN
        if not valid.any():
            raise Drop("all_invalid_depth", f"no depth pixel of the {w}x{h} frame is valid in "
                       f"[{min_d}, {max_d}] m")
        depth_lr = np.where(valid, depth_m, np.float32(np.nan))
        t0 = time.monotonic()
        try:
            prediction = predictor.predict(rgb, depth_lr, min_confidence=config.min_confidence)
        except Exception as exc:  # noqa: BLE001 (a predictor failure drops the pair, no more)
            raise Drop("inference_error", f"{type(exc).__name__}: {exc}") from exc
        model_s = time.monotonic() - t0
        frame = self.outputs(prediction, depth_lr, rgb, camera_info, intr, model_s, rgb_msg,
                             depth_msg, config)
        self.last_stamp = t_depth
        return frame
