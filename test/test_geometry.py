"""geometry: intrinsics for the output size (ROI, binning, Tx) and PCL-layout point arrays."""
import numpy as np
import pytest

from naima_ros.geometry import (XYZ_DTYPE, XYZRGB_DTYPE, depth_to_points, image_size,
                                output_intrinsics, pack_rgb, resize_rgb)

K = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
P = [500.0, 0.0, 320.0, -25.0, 0.0, 510.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # baseline 5 cm


def project(m, xyz):
    """Pixel coordinates of (N, 3) camera points through K (3, 3) or P (3, 4)."""
    m = np.asarray(m, dtype=np.float64)
    h = np.hstack([xyz, np.ones((len(xyz), 1))]) if m.shape[1] == 4 else xyz
    uvw = h @ m.T
    return uvw[:, :2] / uvw[:, 2:]


def test_hand_case_2x_upscale_keeps_pixel_centres():
    out = output_intrinsics([100, 0, 50, 0, 100, 40, 0, 0, 1], np.zeros(12), 100, 80, 200, 160)
    assert (out.width, out.height) == (200, 160)
    assert (out.fx, out.fy) == (200.0, 200.0)
    assert (out.cx, out.cy) == (100.5, 80.5)  # (c + 0.5) * 2 - 0.5
    # a zero P (unrectified driver) becomes [K | 0]
    np.testing.assert_allclose(out.p[:, :3], out.k)
    np.testing.assert_allclose(out.p[:, 3], 0)


def test_same_size_is_identity():
    out = output_intrinsics(K, P, 640, 480, 640, 480)
    np.testing.assert_allclose(out.k, np.reshape(K, (3, 3)))
    np.testing.assert_allclose(out.p, np.reshape(P, (3, 4)))


@pytest.mark.parametrize("binning,roi,out_size", [
    ((0, 0), None, (1280, 960)),
    ((2, 2), None, (320, 240)),
    ((1, 1), (100, 60, 320, 240), (640, 480)),
    ((2, 4), (64, 32, 512, 384), (1024, 384)),
])
def test_projection_matches_pixel_mapping(binning, roi, out_size):
    """Projecting with K'/P' equals projecting with K/P and then mapping pixels by hand."""
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 5, 50)])
    bx, by = max(binning[0], 1), max(binning[1], 1)
    x0, y0, rw, rh = roi or (0, 0, 640, 480)
    img_w, img_h = rw // bx, rh // by
    assert image_size(640, 480, binning_x=binning[0], binning_y=binning[1], roi=roi) == (img_w,
                                                                                           img_h)
    sx, sy = out_size[0] / img_w, out_size[1] / img_h
    out = output_intrinsics(K, P, 640, 480, *out_size, binning_x=binning[0],
                            binning_y=binning[1], roi=roi)
    for full, scaled in ((np.reshape(K, (3, 3)), out.k), (np.reshape(P, (3, 4)), out.p)):
        uv = project(full, xyz)
        # sensor pixel -> cropped, binned pixel -> resized pixel (centre-aligned)
        u = ((uv[:, 0] - x0) / bx + 0.5) * sx - 0.5
        v = ((uv[:, 1] - y0) / by + 0.5) * sy - 0.5
        np.testing.assert_allclose(project(scaled, xyz), np.column_stack([u, v]), atol=1e-9)


def test_tx_scales_with_fx_so_the_baseline_is_kept():
    out = output_intrinsics(K, P, 640, 480, 160, 120, binning_x=2, binning_y=2)
    assert out.p[0, 3] == pytest.approx(-25.0 / 2 * (160 / 320))
    assert -out.p[0, 3] / out.p[0, 0] == pytest.approx(0.05)


@pytest.mark.parametrize("k,roi,match", [
    ([np.nan] + K[1:], None, "NaN or inf"),
    ([0.0] + K[1:], None, "degenerate"),
    (K, (600, 0, 100, 100), "exceeds"),
])
def test_intrinsics_errors(k, roi, match):
    with pytest.raises(ValueError, match=match):
        output_intrinsics(k, P, 640, 480, 640, 480, roi=roi)


def test_point_dtypes_are_pcl_layout():
    assert XYZ_DTYPE.itemsize == 16 and XYZRGB_DTYPE.itemsize == 32
    assert [XYZRGB_DTYPE.fields[n][1] for n in "x y z rgb".split()] == [0, 4, 8, 16]
    assert [XYZ_DTYPE.fields[n][1] for n in "x y z".split()] == [0, 4, 8]


def test_pack_rgb_hand_value():
    packed = pack_rgb(np.array([[1, 2, 3], [255, 0, 128]], dtype=np.uint8))
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0x010203, 0xFF0080]


def test_points_hand_case():
    depth = np.array([[2.0, np.nan], [0.0, 4.0]], dtype=np.float32)
    pts = depth_to_points(depth, fx=2.0, fy=4.0, cx=0.5, cy=0.5)
    assert pts.dtype == XYZ_DTYPE and pts.shape == (2, 2)
    assert (pts[0, 0]["x"], pts[0, 0]["y"], pts[0, 0]["z"]) == (-0.5, -0.25, 2.0)
    assert (pts[1, 1]["x"], pts[1, 1]["y"], pts[1, 1]["z"]) == (1.0, 0.5, 4.0)
    for i, j in ((0, 1), (1, 0)):
        assert all(np.isnan(pts[i, j][n]) for n in "xyz")
    raw = np.frombuffer(pts.tobytes(), dtype=np.float32).reshape(4, 4)
    assert (raw[:, 3].view(np.uint32) == 0).all()  # padding bytes zeroed


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_points_match_per_pixel_reference(stride):
    rng = np.random.default_rng(4)
    h, w = 7, 10
    depth = rng.uniform(0.3, 6.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.25] = np.nan
    depth[0, 0] = np.inf
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    fx, fy, cx, cy = 9.0, 8.0, 4.7, 3.1
    pts = depth_to_points(depth, fx, fy, cx, cy, rgb=rgb, stride=stride)
    assert pts.dtype == XYZRGB_DTYPE
    assert pts.shape == (-(-h // stride), -(-w // stride))
    assert len(pts.tobytes()) == pts.size * 32
    for i in range(pts.shape[0]):
        for j in range(pts.shape[1]):
            v, u = i * stride, j * stride
            z = float(depth[v, u])
            p = pts[i, j]
            r, g, b = (int(c) for c in rgb[v, u])
            assert int(np.float32(p["rgb"]).view(np.uint32)) == (r << 16) | (g << 8) | b
            if not np.isfinite(z):
                assert np.isnan(p["x"]) and np.isnan(p["y"]) and np.isnan(p["z"])
                continue
            np.testing.assert_allclose([p["x"], p["y"], p["z"]],
                                       [(u - cx) * z / fx, (v - cy) * z / fy, z], rtol=1e-5)


def test_points_rgb_is_pack_rgb_and_padding_is_zero():
    rng = np.random.default_rng(5)
    depth = rng.uniform(0.3, 6.0, (6, 9)).astype(np.float32)
    bgr = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    rgb = bgr[..., ::-1]  # a non-contiguous view, as a decoded bgr8 image may be
    pts = depth_to_points(depth, 9.0, 8.0, 4.5, 3.0, rgb=rgb)
    np.testing.assert_array_equal(pts["rgb"].view(np.uint32), pack_rgb(rgb).view(np.uint32))
    raw = pts.view(np.uint8).reshape(6, 9, 32)
    assert not raw[..., 12:16].any() and not raw[..., 19:].any()


@pytest.mark.parametrize("kwargs,match", [
    ({"depth_m": np.zeros(3)}, r"\(H, W\)"),
    ({"depth_m": np.zeros((2, 2)), "stride": 0}, "stride"),
    ({"depth_m": np.zeros((2, 2)), "rgb": np.zeros((2, 3, 3), np.uint8)}, "does not match"),
])
def test_points_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        depth_to_points(fx=1, fy=1, cx=0, cy=0, **kwargs)


def test_resize_rgb_shape_identity_and_centre_alignment():
    rgb = np.random.default_rng(5).integers(0, 256, (50, 66, 3), dtype=np.uint8)
    assert resize_rgb(rgb, 66, 50) is rgb
    out = resize_rgb(rgb, 64, 48)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    # a horizontal ramp stays a ramp sampled at the centre-aligned positions
    ramp = np.repeat(np.repeat(np.arange(0, 200, 2, dtype=np.uint8)[None, :, None], 3, 2), 4, 0)
    half = resize_rgb(ramp, 200, 4)[0, :, 0].astype(float)
    expected = np.clip((np.arange(200) + 0.5) / 2 - 0.5, 0, 99) * 2
    np.testing.assert_allclose(half, expected, atol=1.0)


# ---------------------------------------------------------------------- image_geometry conventions
# A rectified camera whose P differs from K (rectification with a new camera matrix): 0.75 x the
# focal length and the centre moved by 12 px, plus a stereo Tx/Ty.
K_RAW = [80.0, 0.0, 31.5, 0.0, 80.0, 23.5, 0.0, 0.0, 1.0]
P_RECT = [60.0, 0.0, 43.5, -3.0, 0.0, 60.0, 11.5, 1.5, 0.0, 0.0, 1.0, 0.0]


def test_intrinsics_are_read_from_p_as_image_geometry_does():
    out = output_intrinsics(K_RAW, P_RECT, 64, 48, 64, 48)
    assert (out.fx, out.fy, out.cx, out.cy, out.tx, out.ty) == (60.0, 60.0, 43.5, 11.5, -3.0, 1.5)
    with pytest.raises(ValueError, match="P is degenerate"):
        output_intrinsics(K_RAW, [60.0, 0, 43.5, 0, 0, 0.0, 11.5, 0, 0, 0, 1, 0], 64, 48, 64, 48)


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_the_cloud_is_point_cloud_xyz_of_the_published_depth_and_camera_info(encoding):
    """The served cloud equals depth_image_proc's point_cloud_xyz run on the served depth image
    and CameraInfo (from P; Tx/Ty do not enter), for a camera whose P is not K."""
    from types import SimpleNamespace

    from reference_point_cloud import decode_depth_image, point_cloud_xyz

    from naima_ros.confidence import Prediction
    from naima_ros.serving import FrameServer, ServeConfig

    s, (h, w) = 8, (6, 8)
    yy, xx = np.mgrid[0:h, 0:w]
    depth = (1.5 + 0.2 * xx + 0.1 * yy).astype("<f4")

    def msg(pixels, encoding, frame_id):
        return SimpleNamespace(
            header=SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=0), frame_id=frame_id),
            height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
            step=pixels.nbytes // pixels.shape[0], is_bigendian=0, data=pixels.tobytes())

    info = SimpleNamespace(width=w * s, height=h * s, binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                           k=K_RAW, p=P_RECT, d=[0.0] * 5, r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                           distortion_model="plumb_bob")

    class Nearest:
        scale = s

        def predict(self, rgb, depth_lr, min_confidence=None):
            depth_hr = np.kron(depth_lr, np.ones((s, s), np.float32))
            return Prediction(depth_hr, np.isfinite(depth_hr).astype(np.float32))

    rgb = np.zeros((h * s, w * s, 3), np.uint8)
    frame = FrameServer().serve(Nearest(), msg(rgb, "rgb8", "rgb"), msg(depth, "32FC1", "tof"),
                                info, ServeConfig(output_encoding=encoding, points_rgb=False))
    img, ci = frame.image, frame.camera_info
    np.testing.assert_array_equal(ci.p, P_RECT)  # same size: the camera's own P and K
    np.testing.assert_array_equal(ci.k, K_RAW)
    published = decode_depth_image(img.height, img.width, img.step, img.encoding,
                                   img.is_bigendian, img.data)
    want = point_cloud_xyz(published, ci.p)
    got = np.stack([frame.points[n] for n in "xyz"], axis=-1).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # read through K instead, the cloud would be off by decimetres: the check can tell
    via_k = point_cloud_xyz(published, np.hstack([np.reshape(K_RAW, (3, 3)), np.zeros((3, 1))]))
    assert np.nanmax(np.abs(via_k - want)) > 0.3


def blob_image(width, height, u0, v0, sigma=3.0):
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    g = 250 * np.exp(-((u - u0) ** 2 + (v - v0) ** 2) / (2 * sigma**2))
    return np.repeat(np.rint(g).astype(np.uint8)[..., None], 3, axis=2)


def centroid(rgb):
    g = rgb[..., 0].astype(np.float64)
    v, u = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return (g * u).sum() / g.sum(), (g * v).sum() / g.sum()


@pytest.mark.parametrize("size", [(128, 96), (48, 36), (200, 150)])
def test_published_camera_info_describes_the_resized_image_exactly(size):
    """A 3D point imaged through P, the image resized as `resize_rgb_to_multiple` resizes it: the
    point appears where the output P projects it ((c + 0.5) s - 0.5), not where image_proc's
    c s would put it (off by 0.5 (s - 1) px)."""
    xyz = np.array([[0.07, -0.02, 1.3]])
    u0, v0 = project(np.reshape(P_RECT, (3, 4)), xyz)[0]
    resized = resize_rgb(blob_image(64, 48, u0, v0), *size)
    out = output_intrinsics(K_RAW, P_RECT, 64, 48, *size)
    want = project(out.p, xyz)[0]
    got = np.array(centroid(resized))
    np.testing.assert_allclose(got, want, atol=0.05)
    s = size[0] / 64
    image_proc = np.array([u0, v0]) * s  # its resize's c' = c s maps every pixel u to u s
    assert np.abs(got - image_proc).min() > 0.5 * abs(s - 1) - 0.05
