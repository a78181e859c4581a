"""Pinhole geometry: intrinsics for the output image and organised point arrays from depth.

ROS-free. The camera model follows REP 104 / `sensor_msgs/CameraInfo` and image_geometry's
`PinholeCameraModel`, whose conventions are these:

- Pixel centres lie at integer coordinates: the top-left pixel's centre is (0, 0).
- The images here are rectified, so P (3x4), not K, is their camera model: fx = P[0,0],
  fy = P[1,1], cx = P[0,2], cy = P[1,2], Tx = P[0,3], Ty = P[1,3]. K describes the raw sensor
  and differs from P whenever rectification rescaled or moved the image (alpha, a new camera
  matrix). A point (X, Y, Z) projects to u = (fx X + Tx) / Z + cx, v = (fy Y + Ty) / Z + cy,
  and pixel (u, v) at depth Z back-projects to X = ((u - cx) Z - Tx) / fx, likewise Y
  (image_geometry's project3dToPixel / projectPixelTo3dRay; depth_image_proc's `register`).
  Tx = -fx B places the second camera of a stereo pair B metres from the first; Ty likewise.
- The point cloud follows depth_image_proc's `point_cloud_xyz` instead: X = (u - cx) Z / fx with
  P's fx, fy, cx, cy and Tx, Ty left out, so the cloud lies in the image's own optical frame
  (header.frame_id) and equals the cloud a depth_image_proc node makes from the published depth
  and CameraInfo. An unrectified driver's P of zeros is read as [K | 0].
- ROI and binning (image_geometry's convention): the published image is the sensor cropped to
  `roi` and then binned, so c' = (c - roi_offset) / binning and f' = f / binning.
- Resizing to the output size uses the pixel-centre convention of an area/bilinear resize
  (OpenCV, PIL, torch with align_corners=False): pixel centre u maps to (u + 0.5) s - 0.5, so
  c' = (c + 0.5) s - 0.5, f' = f s, Tx' = Tx s. image_proc's `resize` writes c' = c s, which
  holds for a resize that keeps pixel (0, 0)'s centre in place (decimation); for a centre-aligned
  resize, such as the cv::resize image_proc itself runs, it is off by 0.5 (s - 1) px (3.5 px at
  x8). The resizes here are centre-aligned: `resize_rgb` (PIL bilinear), and the LR grid the
  network upsamples (bicubic with align_corners=False: LR pixel u sits at (u + 0.5) s - 0.5 in HR).
  The published CameraInfo therefore describes the published image exactly.

Point arrays use PCL's memory layout so a `sensor_msgs/PointCloud2` can wrap the bytes directly:
x, y, z float32 at offsets 0, 4, 8; XYZ points are 16 bytes; XYZRGB points are 32 bytes with the
colour packed as 0x00RRGGBB into the float at offset 16. Invalid depth gives NaN x, y, z
(an organised cloud keeps its H x W shape), as depth_image_proc does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "XYZ_DTYPE",
    "XYZRGB_DTYPE",
    "Intrinsics",
    "depth_to_points",
    "image_size",
    "output_intrinsics",
    "pack_rgb",
    "resize_rgb",
]

# PCL PointXYZ: x y z + 4 bytes padding (SSE alignment)
XYZ_DTYPE = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3,
                      "offsets": [0, 4, 8], "itemsize": 16})
# PCL PointXYZRGB: x y z pad rgb + 12 bytes padding
XYZRGB_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4"] * 4,
                         "offsets": [0, 4, 8, 16], "itemsize": 32})


@dataclass(frozen=True)
class Intrinsics:
    """Camera model of one image: size in pixels, K (3, 3) and P (3, 4) as float64 arrays;
    fx, fy, cx, cy, tx, ty are P's."""

    width: int
    height: int
    k: np.ndarray
    p: np.ndarray

    # image_geometry reads a rectified image's model from P (module docstring)
    @property
    def fx(self) -> float:
        return float(self.p[0, 0])

    @property
    def fy(self) -> float:
        return float(self.p[1, 1])

    @property
    def cx(self) -> float:
        return float(self.p[0, 2])

    @property
    def cy(self) -> float:
        return float(self.p[1, 2])

    @property
    def tx(self) -> float:
        """P[0, 3] = -fx B (pixels x metres) of a stereo pair's second camera; 0 otherwise."""
        return float(self.p[0, 3])

    @property
    def ty(self) -> float:
        return float(self.p[1, 3])


def _scale_rows(m: np.ndarray, sx: float, sy: float, ox: float, oy: float) -> np.ndarray:
    """Apply u' = sx * u + ox, v' = sy * v + oy to the image rows of a K or P matrix."""
    m = m.copy()
    # row 0 = fx*X + cx*Z (+ Tx): scaled by sx, plus ox times the homogeneous row 2; same for v
    m[0] = sx * m[0] + ox * m[2]
    m[1] = sy * m[1] + oy * m[2]
    return m


def output_intrinsics(k, p, width: int, height: int, out_width: int, out_height: int, *,
                      binning_x: int = 0, binning_y: int = 0,
                      roi: tuple[int, int, int, int] | None = None) -> Intrinsics:
    """Intrinsics of an output image of size out_width x out_height made from a camera's image.

    Args:
        k: K as 9 numbers (row-major) or (3, 3), of the full-resolution calibration.
        p: P as 12 numbers or (3, 4); Tx = P[0, 3] scales with fx.
        width, height: the calibration resolution (`CameraInfo.width/height`).
        out_width, out_height: size of the image the returned intrinsics describe.
        binning_x, binning_y: `CameraInfo` binning; 0 and 1 both mean none.
        roi: `(x_offset, y_offset, width, height)`; None or all zeros means the full image.

    Returns:
        `Intrinsics(out_width, out_height, K', P')` with ROI and binning folded in.

    Raises:
        ValueError: a non-finite or degenerate K/P, or an ROI outside the calibration image.
    """
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    p = np.asarray(p, dtype=np.float64).reshape(3, 4)
    if not (np.isfinite(k).all() and np.isfinite(p).all()):
        raise ValueError("camera intrinsics contain NaN or inf")
    if k[0, 0] <= 0 or k[1, 1] <= 0 or k[2, 2] == 0:
        raise ValueError(f"camera intrinsics are degenerate: fx={k[0, 0]} fy={k[1, 1]} "
                         f"K[2,2]={k[2, 2]}")
    if p[0, 0] == 0 and p[1, 1] == 0:
        # An unrectified camera may publish P = 0; the image is already rectified, so P = [K|0].
        p = np.hstack([k, np.zeros((3, 1))])
    elif p[0, 0] <= 0 or p[1, 1] <= 0 or p[2, 2] == 0:
        raise ValueError(f"camera projection P is degenerate: fx={p[0, 0]} fy={p[1, 1]} "
                         f"P[2,2]={p[2, 2]}")
    bx, by = max(int(binning_x), 1), max(int(binning_y), 1)
    x0, y0, roi_w, roi_h = roi if roi is not None else (0, 0, 0, 0)
    if roi_w == 0 or roi_h == 0:
        x0, y0, roi_w, roi_h = 0, 0, width, height
    elif width > 0 and height > 0 and (x0 + roi_w > width or y0 + roi_h > height):
        raise ValueError(f"roi (x={x0}, y={y0}, {roi_w}x{roi_h}) exceeds the calibration "
                         f"image {width}x{height}")
    # full sensor -> cropped and binned image (image_geometry's convention)
    k_img = _scale_rows(k, 1.0 / bx, 1.0 / by, -x0 / bx, -y0 / by)
    p_img = _scale_rows(p, 1.0 / bx, 1.0 / by, -x0 / bx, -y0 / by)
    img_w, img_h = roi_w // bx, roi_h // by
    if img_w <= 0 or img_h <= 0:
        raise ValueError(f"camera_info describes an empty image: {width}x{height}, "
                         f"binning {bx}x{by}, roi {roi_w}x{roi_h}")
    # binned image -> output size, keeping pixel centres aligned
    sx, sy = out_width / img_w, out_height / img_h
    return Intrinsics(out_width, out_height,
                      _scale_rows(k_img, sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5),
                      _scale_rows(p_img, sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5))


def image_size(width: int, height: int, *, binning_x: int = 0, binning_y: int = 0,
               roi: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """(width, height) of the image a CameraInfo describes, after ROI and binning."""
    bx, by = max(int(binning_x), 1), max(int(binning_y), 1)
    _, _, roi_w, roi_h = roi if roi is not None else (0, 0, 0, 0)
    if roi_w == 0 or roi_h == 0:
        roi_w, roi_h = width, height
    return roi_w // bx, roi_h // by


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Pack (..., 3) uint8 RGB as PCL's float `rgb` field (bits 0x00RRGGBB), shape (...)."""
    rgb = rgb.astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.view(np.float32)


def depth_to_points(depth_m: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                    rgb: np.ndarray | None = None, stride: int = 1) -> np.ndarray:
    """Back-project a depth image to an organised point array in PCL layout.

    Args:
        depth_m: (H, W) metres; NaN, inf and <= 0 are invalid and give NaN points.
        fx, fy, cx, cy: intrinsics of the depth image (pixels): P's, as depth_image_proc's
            point_cloud_xyz (`Intrinsics.fx` ...); Tx/Ty do not enter (module docstring).
        rgb: optional (H, W, 3) uint8 colour on the same pixel grid -> XYZRGB, else XYZ.
        stride: keep every stride-th row and column (>= 1); the cloud is
            ceil(H / stride) x ceil(W / stride).

    Returns:
        Structured array (h, w) of `XYZRGB_DTYPE` (32-byte points) or `XYZ_DTYPE` (16-byte);
        `.tobytes()` is the `PointCloud2.data` payload. Padding bytes are zero.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth_m.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if rgb is not None and rgb.shape != depth_m.shape + (3,):
        raise ValueError(f"rgb shape {rgb.shape} does not match depth {depth_m.shape}")
    z = depth_m[::stride, ::stride].astype(np.float32)
    z[~(np.isfinite(z) & (z > 0))] = np.nan
    u = np.arange(0, depth_m.shape[1], stride, dtype=np.float32)
    v = np.arange(0, depth_m.shape[0], stride, dtype=np.float32)
    dtype = XYZ_DTYPE if rgb is None else XYZRGB_DTYPE
    # One pass per field, written in place: zero-filled so padding bytes are deterministic
    points = np.zeros(z.shape, dtype=dtype)
    np.multiply((u - np.float32(cx)) * np.float32(1.0 / fx), z, out=points["x"])
    np.multiply(((v - np.float32(cy)) * np.float32(1.0 / fy))[:, None], z, out=points["y"])
    points["z"] = z
    if rgb is not None:
        # pack_rgb's 0x00RRGGBB as the little-endian bytes B, G, R, 0 of the `rgb` float,
        # copied straight from the image (no uint32 temporaries)
        point_bytes = points.view(np.uint8).reshape(z.shape + (dtype.itemsize,))
        rgb_offset = dtype.fields["rgb"][1]
        for channel in range(3):  # R, G, B to bytes 2, 1, 0; per channel: numpy is slow at 3-wide rows
            point_bytes[..., rgb_offset + 2 - channel] = rgb[::stride, ::stride, channel]
    return points


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 RGB to (height, width, 3), bilinear with pixel centres aligned.

    The pixel-centre convention matches `output_intrinsics`, so K' of the resized image is exact.
    """
    from PIL import Image  # imported here: only the optional resize path needs Pillow

    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))
