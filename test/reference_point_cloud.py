"""depth_image_proc's `point_cloud_xyz`, written from its description for the tests: an independent
reference for the node's cloud (no naima_ros code).

`convertDepth` (depth_image_proc/conversions.hpp) reads the camera model with image_geometry's
PinholeCameraModel, whose fx(), fy(), cx(), cy() are P[0,0], P[1,1], P[0,2], P[1,2]; it computes
x = (u - cx) * depth * unit / fx, y = (v - cy) * depth * unit / fy, z = depth * unit, and writes NaN
for invalid depth (depth_traits.hpp: uint16 valid != 0, unit 0.001; float valid = finite, unit 1).
"""
import numpy as np

DTYPES = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}


def decode_depth_image(height, width, step, encoding, is_bigendian, data) -> np.ndarray:
    """(H, W) float64 metres, NaN invalid, of a sensor_msgs/Image's fields."""
    dtype = np.dtype(DTYPES[encoding]).newbyteorder(">" if is_bigendian else "<")
    rows = np.frombuffer(bytes(data), np.uint8).reshape(height, step)[:, :width * dtype.itemsize]
    raw = rows.copy().view(dtype).astype(np.float64)
    if dtype.kind == "u":
        return np.where(raw != 0, raw * 0.001, np.nan)
    return np.where(np.isfinite(raw), raw, np.nan)


def point_cloud_xyz(depth_m: np.ndarray, p) -> np.ndarray:
    """(H, W, 3) points of a depth image and its CameraInfo's P (12 numbers), NaN invalid."""
    p = np.asarray(p, dtype=np.float64).reshape(3, 4)
    fx, fy, cx, cy = p[0, 0], p[1, 1], p[0, 2], p[1, 2]
    v, u = np.mgrid[0:depth_m.shape[0], 0:depth_m.shape[1]].astype(np.float64)
    return np.stack([(u - cx) * depth_m / fx, (v - cy) * depth_m / fy, depth_m], axis=-1)


def cloud_xyz(height, width, point_step, fields, data) -> np.ndarray:
    """(H, W, 3) float64 x, y, z of a little-endian PointCloud2's fields (name, offset)."""
    offsets = dict(fields)
    raw = np.frombuffer(bytes(data), np.uint8).reshape(height * width, point_step)
    xyz = [raw[:, offsets[n]:offsets[n] + 4].copy().view("<f4")[:, 0] for n in "xyz"]
    return np.stack(xyz, axis=-1).astype(np.float64).reshape(height, width, 3)
