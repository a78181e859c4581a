"""numpy -> sensor_msgs: the node's output messages from `naima_ros.serving`'s arrays.

Pure functions, no node, no logging. Decoding the inputs is `naima_ros.serving.decode_images`,
which reads rclpy messages through their field names.
"""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from naima_ros.depth_codec import EncodedImage
from naima_ros.serving import OutputCameraInfo, point_fields

__all__ = ["camera_info_msg", "depth_image", "points_cloud"]


def _bytes(data) -> array.array:
    # Assigning an array.array('B') to a message field skips rclpy's per-element checks.
    return array.array("B", data)


def depth_image(enc: EncodedImage, header: Header) -> Image:
    """The depth Image of an encoded depth payload (`naima_ros.depth_codec.encode_depth`)."""
    return Image(header=header, height=enc.height, width=enc.width, encoding=enc.encoding,
                 is_bigendian=enc.is_bigendian, step=enc.step, data=_bytes(enc.data))


def camera_info_msg(info: OutputCameraInfo, header: Header) -> CameraInfo:
    """The output CameraInfo (no ROI, no binning)."""
    return CameraInfo(header=header, height=info.height, width=info.width,
                      distortion_model=info.distortion_model, d=info.d, r=info.r, k=info.k,
                      p=info.p)


def points_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """An organised PointCloud2 wrapping a PCL-layout point array (`geometry.depth_to_points`)."""
    height, width = points.shape
    fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
              for name, offset, datatype, count in point_fields(points)]
    return PointCloud2(header=header, height=height, width=width, fields=fields,
                       is_bigendian=False, point_step=points.itemsize,
                       row_step=points.itemsize * width, data=_bytes(points.tobytes()),
                       is_dense=False)
