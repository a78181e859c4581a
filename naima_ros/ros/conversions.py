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


def _uint8_array(data) -> array.array:
    """The array.array('B') a `uint8[]` field holds, filled with one copy of a contiguous buffer
    (bytes, or a numpy array of any dtype)."""
    out = array.array("B")
    out.frombytes(data.reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else data)
    return out


def _with_data(msg_type, data, **fields):
    """`msg_type(**fields)` holding `data` (a `uint8[]` payload) after exactly one copy.

    The generated constructor copies `data` into a new array.array, and so does the `data` setter
    of a message that does not check its fields (rclpy's default since Jazzy,
    ROS_PYTHON_CHECK_FIELDS): two copies of a 9.8 MB cloud for nothing. A checking setter
    (Humble's always, later ones with `check_fields=True`) keeps an array.array('B') as it is.
    """
    if "_check_fields" in msg_type.__slots__:
        fields["check_fields"] = True
    msg = msg_type(**fields)
    msg.data = _uint8_array(data)
    return msg


def depth_image(enc: EncodedImage, header: Header) -> Image:
    """The depth Image of an encoded depth payload (`naima_ros.depth_codec.encode_depth`)."""
    return _with_data(Image, enc.data, header=header, height=int(enc.height), width=int(enc.width),
                      encoding=enc.encoding, is_bigendian=bool(enc.is_bigendian), step=int(enc.step))


def camera_info_msg(info: OutputCameraInfo, header: Header) -> CameraInfo:
    """The output CameraInfo (no ROI, no binning)."""
    return CameraInfo(header=header, height=info.height, width=info.width,
                      distortion_model=info.distortion_model, d=info.d, r=info.r, k=info.k,
                      p=info.p)


def points_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """An organised PointCloud2 of a PCL-layout point array (`geometry.depth_to_points`): its bytes
    are copied once, into the message."""
    height, width = points.shape
    fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
              for name, offset, datatype, count in point_fields(points)]
    return _with_data(PointCloud2, np.ascontiguousarray(points), header=header, height=int(height),
                      width=int(width), fields=fields, is_bigendian=False,
                      point_step=int(points.itemsize), row_step=int(points.itemsize * width),
                      is_dense=False)
