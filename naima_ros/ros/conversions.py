"""sensor_msgs <-> numpy glue, thin over `naima_ros.depth_codec` and `naima_ros.geometry`.

Everything here is a pure function of messages and arrays: no node, no logging. Errors are
ValueError with a message that names the offending field, so the node can log and count them.
"""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from naima_ros.depth_codec import decode_color, decode_depth, encode_depth
from naima_ros.geometry import Intrinsics, depth_to_points, image_size, output_intrinsics

__all__ = [
    "camera_info_image_size",
    "camera_info_to_output",
    "depth_image",
    "depth_from_image",
    "points_cloud",
    "rgb_from_image",
    "stamp_ns",
]


def stamp_ns(stamp) -> int:
    """A `builtin_interfaces/Time` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _bytes(data) -> array.array:
    # Assigning an array.array('B') to a message field skips rclpy's per-element checks.
    return array.array("B", data)


def depth_from_image(msg: Image) -> tuple[np.ndarray, np.ndarray]:
    """(depth_m (H, W) float32 with NaN invalid, valid (H, W) bool) of a depth Image."""
    return decode_depth(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                        bool(msg.is_bigendian))


def rgb_from_image(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour or mono Image."""
    return decode_color(msg.data, msg.encoding, msg.height, msg.width, msg.step,
                        bool(msg.is_bigendian))


def depth_image(depth_m: np.ndarray, header: Header, encoding: str = "32FC1") -> Image:
    """A depth Image (32FC1 metres, NaN invalid; or 16UC1 millimetres, 0 invalid)."""
    enc = encode_depth(depth_m, encoding)
    return Image(header=header, height=enc.height, width=enc.width, encoding=enc.encoding,
                 is_bigendian=enc.is_bigendian, step=enc.step, data=_bytes(enc.data))


def _roi(info: CameraInfo) -> tuple[int, int, int, int]:
    r = info.roi
    return (r.x_offset, r.y_offset, r.width, r.height)


def camera_info_image_size(info: CameraInfo) -> tuple[int, int]:
    """(width, height) of the image a CameraInfo describes, after its ROI and binning."""
    return image_size(info.width, info.height, binning_x=info.binning_x,
                      binning_y=info.binning_y, roi=_roi(info))


def camera_info_to_output(info: CameraInfo, out_width: int, out_height: int,
                          header: Header) -> tuple[CameraInfo, Intrinsics]:
    """The CameraInfo of an out_width x out_height image made from the camera's image.

    K and P (Tx included) are folded through the input ROI and binning and rescaled; the result
    describes the output image exactly, so it has no ROI and no binning. D, R and the distortion
    model are kept (the images are rectified).

    Raises:
        ValueError: NaN/inf or degenerate intrinsics, or an ROI outside the calibration image.
    """
    intr = output_intrinsics(info.k, info.p, info.width, info.height, out_width, out_height,
                             binning_x=info.binning_x, binning_y=info.binning_y, roi=_roi(info))
    out = CameraInfo(header=header, height=out_height, width=out_width,
                     distortion_model=info.distortion_model, d=list(info.d), r=info.r,
                     k=intr.k.reshape(-1), p=intr.p.reshape(-1))
    return out, intr


def _fields(rgb: bool) -> list[PointField]:
    names = ("x", "y", "z", "rgb") if rgb else ("x", "y", "z")
    offsets = (0, 4, 8, 16)
    return [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
            for n, o in zip(names, offsets)]


def points_cloud(depth_m: np.ndarray, intr: Intrinsics, header: Header,
                 rgb: np.ndarray | None = None, stride: int = 1) -> PointCloud2:
    """An organised PointCloud2 (PCL layout, NaN for invalid depth) from depth on `intr`'s grid."""
    points = depth_to_points(depth_m, intr.fx, intr.fy, intr.cx, intr.cy, rgb=rgb, stride=stride)
    height, width = points.shape
    return PointCloud2(header=header, height=height, width=width, fields=_fields(rgb is not None),
                       is_bigendian=False, point_step=points.itemsize,
                       row_step=points.itemsize * width, data=_bytes(points.tobytes()),
                       is_dense=False)
