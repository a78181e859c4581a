"""Register an unregistered ToF depth image onto the RGB camera's pixel grid (at LR resolution).

ROS-free, numpy only. The same operation as depth_image_proc's `register` node: every valid depth
pixel is back-projected with the depth camera's intrinsics, moved into the RGB camera's optical
frame with the depth -> RGB extrinsics and projected with the RGB intrinsics (scaled to the
low-resolution grid the model takes). Where several points land on one pixel the nearest surface
wins (a z-buffer); pixels no point lands on stay invalid (NaN) and go through the serving path's
hole handling like any other invalid depth. No upsampling splats: with a depth grid coarser than
the target grid, the gaps between projected samples are holes too.

Conventions (`naima_ros.geometry`'s, image_geometry's): pixel centres at integer coordinates;
both cameras are modelled by their rectified P (3x4), Tx/Ty included, exactly as depth_image_proc's
`register` does: depth pixel (u, v) at depth Z back-projects to X = ((u - cx) Z - Tx) / fx,
Y = ((v - cy) Z - Ty) / fy, and an RGB-frame point projects to u = (fx X + Tx) / Z + cx. A 3D
point in the depth optical frame p_d maps to p_rgb = R(q) p_d + t, with t in metres and q a unit
quaternion (x, y, z, w): the pose of the depth optical frame in the RGB optical frame, which is what
`ros2 run tf2_ros tf2_echo <rgb_optical_frame> <depth_optical_frame>` prints and what
`naima_ros.ros.tf` looks up (tf2's `lookup_transform(rgb_frame, depth_frame, depth stamp)`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["register_depth", "rotation_from_quaternion"]

MIN_Z_M = 1e-6  # points at or behind the RGB camera's plane (z <= 1 um) cannot be projected


def rotation_from_quaternion(xyzw) -> np.ndarray:
    """(3, 3) rotation matrix of a quaternion (x, y, z, w); normalised first.

    Raises:
        ValueError: not 4 finite numbers, or a (near) zero norm.
    """
    q = np.asarray(xyzw, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.isfinite(q).all():
        raise ValueError(f"rotation must be a quaternion of 4 finite numbers (x, y, z, w), "
                         f"got {xyzw!r}")
    norm = np.linalg.norm(q)
    if norm < 1e-6:
        raise ValueError(f"rotation quaternion {xyzw!r} has zero norm")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _projection(m, name: str) -> np.ndarray:
    """(3, 4) P of `m`: a P as 12 numbers or (3, 4), or a K as 9 numbers or (3, 3) (= [K | 0])."""
    m = np.asarray(m, dtype=np.float64)
    if m.size == 9:
        m = np.hstack([m.reshape(3, 3), np.zeros((3, 1))])
    elif m.size != 12:
        raise ValueError(f"{name} must be a 3x4 P or a 3x3 K (12 or 9 numbers), got shape "
                         f"{m.shape}")
    m = m.reshape(3, 4)
    if not np.isfinite(m).all() or m[0, 0] <= 0 or m[1, 1] <= 0:
        raise ValueError(f"{name} is degenerate: fx={m[0, 0]} fy={m[1, 1]} (finite > 0 needed)")
    return m


def register_depth(depth_m: np.ndarray, p_depth, p_rgb, out_size: tuple[int, int],
                   translation_m, rotation_xyzw) -> tuple[np.ndarray, np.ndarray]:
    """Reproject depth onto the RGB camera's grid with a z-buffer.

    Args:
        depth_m: (H, W) depth in metres of the depth camera; NaN, inf and <= 0 are invalid.
        p_depth: (3, 4) P of this depth image, with ROI/binning/resize folded in
            (`geometry.output_intrinsics(...).p`); a (3, 3) K is read as [K | 0].
        p_rgb: (3, 4) P of the RGB camera scaled to the output grid.
        out_size: `(width, height)` of the output grid (the RGB image at LR resolution).
        translation_m: (3,) t of p_rgb = R p_depth + t, metres.
        rotation_xyzw: (4,) quaternion of R, (x, y, z, w).

    Returns:
        `(depth_m, valid)`: float32 (height, width) depth along the RGB optical axis in metres,
        NaN where no point landed, and the bool mask of valid pixels.

    Raises:
        ValueError: a non-2-D depth, degenerate intrinsics, a bad extrinsic or output size.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth_m.shape}")
    p_depth, p_rgb = _projection(p_depth, "p_depth"), _projection(p_rgb, "p_rgb")
    t = np.asarray(translation_m, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ValueError(f"translation must be 3 finite numbers in metres, got "
                         f"{translation_m!r}")
    rotation = rotation_from_quaternion(rotation_xyzw)
    out_w, out_h = (int(v) for v in out_size)
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"output size must be positive, got {out_size!r}")

    with np.errstate(invalid="ignore"):
        valid_in = np.isfinite(depth_m) & (depth_m > 0)
    v, u = np.nonzero(valid_in)
    z = depth_m[v, u].astype(np.float64)
    # back-project through P: [u Z, v Z, Z] = P[:, :3] p + (Tx, Ty, 0), as image_geometry (Tz,
    # which it ignores too, is left out); (N, 3) points in the depth optical frame
    pixels_z = np.stack([u * z, v * z, z]) - np.array([[p_depth[0, 3]], [p_depth[1, 3]], [0.0]])
    points = np.linalg.solve(p_depth[:, :3], pixels_z).T @ rotation.T + t  # RGB optical frame
    in_front = points[:, 2] > MIN_Z_M
    points = points[in_front]
    projected = points @ p_rgb[:, :3].T + np.array([p_rgb[0, 3], p_rgb[1, 3], 0.0])
    u_rgb = np.floor(projected[:, 0] / projected[:, 2] + 0.5).astype(np.int64)
    v_rgb = np.floor(projected[:, 1] / projected[:, 2] + 0.5).astype(np.int64)
    inside = (u_rgb >= 0) & (u_rgb < out_w) & (v_rgb >= 0) & (v_rgb < out_h)
    # z-buffer: the nearest point per target pixel (ufunc.at is unbuffered: duplicates all count)
    registered = np.full(out_h * out_w, np.inf)
    np.minimum.at(registered, v_rgb[inside] * out_w + u_rgb[inside], points[inside, 2])
    registered = registered.reshape(out_h, out_w).astype(np.float32)
    valid = np.isfinite(registered)
    registered[~valid] = np.nan
    return registered, valid
