"""naima_ros.registration against synthetic scenes whose registered depth is known analytically.

The scene (planes, an axis-aligned box) is ray-cast independently from each camera: from the
depth camera to make the input, from the RGB camera (through each output pixel centre) for the
truth. Each output pixel is classified by what the RGB ray hits: the box, background the depth
camera sees, or background hidden from it by the box (its shadow). Pixels whose class changes
within +-0.75 px are borders and are not asserted on.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from naima_ros.registration import register_depth, rotation_from_quaternion


def pinhole(fx, fy, cx, cy):
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


class Scene:
    """A plane n . p = d and optionally an axis-aligned box [lo, hi], in the depth camera frame."""

    def __init__(self, normal, offset, box=None):
        self.normal = np.asarray(normal, float)
        self.offset = float(offset)
        self.box = None if box is None else tuple(np.asarray(b, float) for b in box)

    def cast(self, origin, dirs):
        """Ray parameter of the first hit (inf: none) and whether it is the box."""
        with np.errstate(divide="ignore", invalid="ignore"):
            s_plane = (self.offset - self.normal @ origin) / (dirs @ self.normal)
            s_plane = np.where(s_plane > 0, s_plane, np.inf)
            s_box = np.full(len(dirs), np.inf)
            if self.box is not None:
                t1 = (self.box[0] - origin) / dirs
                t2 = (self.box[1] - origin) / dirs
                t_near = np.nanmax(np.minimum(t1, t2), axis=1)
                t_far = np.nanmin(np.maximum(t1, t2), axis=1)
                hit = (t_far >= t_near) & (t_near > 0)
                s_box = np.where(hit, t_near, np.inf)
        return np.minimum(s_plane, s_box), s_box < s_plane


def pixel_rays(k, width, height, du=0.0, dv=0.0):
    """(H*W, 3) rays with z = 1 through the pixel centres (+ an offset), camera frame."""
    v, u = np.mgrid[0:height, 0:width].astype(float)
    pix = np.stack([u.ravel() + du, v.ravel() + dv, np.ones(u.size)])
    return np.linalg.solve(k, pix).T


def render_depth(scene, k, width, height):
    s, _ = scene.cast(np.zeros(3), pixel_rays(k, width, height))
    depth = s.reshape(height, width).astype(np.float32)
    depth[~np.isfinite(depth)] = np.nan
    return depth


def rgb_truth(scene, k_depth, depth_size, k_rgb, rgb_size, t, rotation):
    """Per output pixel: true z in the RGB frame, class (0 box, 1 seen background, 2 hidden from
    the depth camera by the box, 3 outside the depth image, 4 nothing) and whether it is interior, plus the
    largest change of the true z within the pixel (a bound on the sampling error)."""
    width, height = rgb_size
    centre = -rotation.T @ t  # RGB camera centre in the depth frame
    z_all, class_all = [], []
    for du in (-0.75, 0.0, 0.75):
        for dv in (-0.75, 0.0, 0.75):
            dirs = pixel_rays(k_rgb, width, height, du, dv) @ rotation  # R^T d, row-wise
            s, is_box = scene.cast(centre, dirs)
            points = centre + s[:, None] * dirs
            cls = np.where(is_box, 0, 1)
            # background seen by the depth camera: not behind the box and inside its image
            _, box_first = scene.cast(np.zeros(3), points / points[:, 2:3])
            proj = points @ k_depth.T
            with np.errstate(invalid="ignore", divide="ignore"):
                ud, vd = proj[:, 0] / proj[:, 2], proj[:, 1] / proj[:, 2]
            # the depth samples span [0, W - 1] x [0, H - 1] in depth pixel coordinates
            inside = (ud >= 0) & (ud <= depth_size[0] - 1) & (vd >= 0) & (vd <= depth_size[1] - 1)
            cls = np.where((cls == 1) & box_first, 2, cls)
            cls = np.where(~inside, 3, cls)
            cls = np.where(np.isfinite(s), cls, 4)
            z_all.append(s)  # rays have z = 1 in the RGB frame: the parameter is z
            class_all.append(cls)
    z_all, class_all = np.array(z_all), np.array(class_all)
    centre_idx = 4
    interior = (class_all == class_all[centre_idx]).all(axis=0)
    spread = np.abs(z_all - z_all[centre_idx]).max(axis=0)
    shape = (height, width)
    return (z_all[centre_idx].reshape(shape), class_all[centre_idx].reshape(shape),
            interior.reshape(shape), spread.reshape(shape))


def check_against_truth(depth_out, valid, truth):
    z, cls, interior, spread = truth
    seen = interior & (cls <= 1)
    assert seen.sum() > 100
    # depth sampling is denser than the output grid: every interior seen pixel gets a point
    assert valid[seen].all(), f"{(~valid[seen]).sum()} holes among {seen.sum()} seen pixels"
    err = np.abs(depth_out[seen] - z[seen])
    assert (err <= spread[seen] + 1e-5 * z[seen]).all(), err.max()
    hidden = interior & (cls >= 2)
    assert not valid[hidden].any(), "pixels the depth camera cannot see must stay holes"
    assert np.isnan(depth_out[~valid]).all() and depth_out.dtype == np.float32


def test_fronto_parallel_plane_different_intrinsics_and_baseline():
    scene = Scene([0, 0, 1], 2.0)
    k_d, k_rgb = pinhole(75, 75, 39.5, 29.5), pinhole(50, 52, 31.2, 24.1)
    t, q = np.array([-0.05, 0.01, 0.0]), [0, 0, 0, 1]
    depth = render_depth(scene, k_d, 80, 60)
    out, valid = register_depth(depth, k_d, k_rgb, (64, 48), t, q)
    assert out.shape == (48, 64)
    truth = rgb_truth(scene, k_d, (80, 60), k_rgb, (64, 48), t, np.eye(3))
    check_against_truth(out, valid, truth)
    np.testing.assert_array_equal(out[valid], np.float32(2.0))  # z is unchanged by t_z = 0


def test_tilted_plane_with_rotation():
    scene = Scene(np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0]), 2.5)
    k_d, k_rgb = pinhole(70, 68, 40.3, 30.1), pinhole(55, 55, 32.0, 23.5)
    rot = Rotation.from_rotvec(np.deg2rad(4.0) * np.array([0.2, 1.0, 0.1]) / np.linalg.norm(
        [0.2, 1.0, 0.1]))
    t = np.array([0.04, -0.01, 0.005])
    depth = render_depth(scene, k_d, 80, 60)
    out, valid = register_depth(depth, k_d, k_rgb, (64, 48), t, rot.as_quat())  # scipy: xyzw
    truth = rgb_truth(scene, k_d, (80, 60), k_rgb, (64, 48), t, rot.as_matrix())
    check_against_truth(out, valid, truth)
    assert np.ptp(out[valid]) > 0.5  # the plane is tilted: a real depth range is checked


def test_box_occludes_the_plane_nearest_surface_wins_and_shadow_is_a_hole():
    # box front face at 0.6 m in front of a wall at 3 m; the RGB camera sits 8 cm to the right
    box = ([-0.3, -0.2, 0.6], [0.12, 0.2, 0.9])
    scene = Scene([0, 0, 1], 3.0, box=box)
    k_d, k_rgb = pinhole(60, 60, 39.5, 29.5), pinhole(55, 55, 40.0, 30.0)
    t, rotation = np.array([-0.08, 0.0, 0.0]), np.eye(3)
    depth = render_depth(scene, k_d, 80, 60)
    out, valid = register_depth(depth, k_d, k_rgb, (80, 60), t, [0, 0, 0, 1])
    truth = rgb_truth(scene, k_d, (80, 60), k_rgb, (80, 60), t, rotation)
    check_against_truth(out, valid, truth)
    _, cls, interior, _ = truth
    box_px, shadow_px = interior & (cls == 0), interior & (cls == 2)
    assert box_px.sum() > 200 and shadow_px.sum() >= 40  # both effects are really in the scene
    np.testing.assert_allclose(out[box_px], 0.6, rtol=1e-6)
    # wall points the depth camera sees do land on box pixels: the z-buffer had to choose
    v, u = np.nonzero(depth > 2.0)
    wall = np.linalg.solve(k_d, np.stack([u, v, np.ones_like(u)]).astype(float)).T * 3.0 + t
    proj = wall @ k_rgb.T
    uu = np.floor(proj[:, 0] / proj[:, 2] + 0.5).astype(int)
    vv = np.floor(proj[:, 1] / proj[:, 2] + 0.5).astype(int)
    ok = (uu >= 0) & (uu < 80) & (vv >= 0) & (vv < 60)
    assert box_px[vv[ok], uu[ok]].sum() > 20


@pytest.mark.parametrize("order", [(1.0, 2.0), (2.0, 1.0)])
def test_z_buffer_does_not_depend_on_write_order(order):
    depth = np.array([order], np.float32)  # two points that land on one output pixel
    out, valid = register_depth(depth, pinhole(1, 1, 0, 0), pinhole(0.01, 0.01, 0, 0), (1, 1),
                                [0, 0, 0], [0, 0, 0, 1])
    assert valid.all() and out[0, 0] == 1.0


def test_translation_sign_and_invalid_inputs():
    k = pinhole(40, 40, 15.5, 11.5)
    depth = np.full((24, 32), np.nan, np.float32)
    depth[5, 10] = 2.0
    depth[6, 11] = 0.0  # invalid 16UC1-style zero
    depth[7, 12] = -1.0
    depth[8, 13] = np.inf
    out, valid = register_depth(depth, k, k, (32, 24), [0.1, 0.0, 0.0], [0, 0, 0, 1])
    # p_rgb = p_depth + t: a point 0.1 m to the right at 2 m moves 40 * 0.1 / 2 = 2 px right
    assert valid.sum() == 1 and valid[5, 12] and out[5, 12] == 2.0
    # behind the RGB camera: dropped
    out, valid = register_depth(depth, k, k, (32, 24), [0.0, 0.0, -2.5], [0, 0, 0, 1])
    assert not valid.any() and np.isnan(out).all()


def test_rotation_matches_scipy():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        np.testing.assert_allclose(rotation_from_quaternion(q),
                                   Rotation.from_quat(q).as_matrix(), atol=1e-12)


def test_argument_errors():
    k, d = pinhole(10, 10, 2, 2), np.ones((4, 4), np.float32)
    for kwargs, message in [
        ({"depth_m": np.ones((4, 4, 1))}, r"\(H, W\)"),
        ({"p_depth": np.zeros((3, 3))}, "p_depth is degenerate"),
        ({"p_depth": np.zeros((3, 4))}, "p_depth is degenerate"),
        ({"p_rgb": np.ones(4)}, "p_rgb must be a 3x4 P or a 3x3 K"),
        ({"translation_m": [0, 0]}, "translation"),
        ({"rotation_xyzw": [0, 0, 0, 0]}, "zero norm"),
        ({"rotation_xyzw": [0, 0, 1]}, "4 finite numbers"),
        ({"out_size": (0, 4)}, "output size"),
    ]:
        args = {"depth_m": d, "p_depth": k, "p_rgb": k, "out_size": (4, 4),
                "translation_m": [0, 0, 0], "rotation_xyzw": [0, 0, 0, 1]} | kwargs
        with pytest.raises(ValueError, match=message):
            register_depth(**args)


def with_t(k, tx=0.0, ty=0.0):
    """P = [K | (Tx, Ty, 0)]."""
    return np.hstack([k, [[tx], [ty], [0.0]]])


def test_hand_case_through_p_with_tx_ty_as_depth_image_proc_register():
    """One point by hand with depth_image_proc's formulas: X = ((u - cx) Z - Tx) / fx in the
    depth camera, u' = (fx' X' + Tx') / Z' + cx' in the RGB camera."""
    p_d = with_t(pinhole(40, 40, 15.5, 11.5), tx=-4.0, ty=2.0)
    p_r = with_t(pinhole(30, 32, 14.0, 10.0), tx=6.0, ty=-3.2)
    depth = np.full((24, 32), np.nan, np.float32)
    depth[5, 10] = 2.0
    x, y = ((10 - 15.5) * 2.0 + 4.0) / 40, ((5 - 11.5) * 2.0 - 2.0) / 40
    x, y, z = x + 0.1, y - 0.05, 2.0 + 0.2  # t
    u, v = (30 * x + 6.0) / z + 14.0, (32 * y - 3.2) / z + 10.0
    out, valid = register_depth(depth, p_d, p_r, (32, 24), [0.1, -0.05, 0.2], [0, 0, 0, 1])
    assert valid.sum() == 1 and valid[int(np.floor(v + 0.5)), int(np.floor(u + 0.5))]
    assert out[valid][0] == np.float32(z)
    # ignoring Tx/Ty (reading only K) lands elsewhere: the test can tell the two apart
    _, valid_k = register_depth(depth, p_d[:, :3], p_r[:, :3], (32, 24), [0.1, -0.05, 0.2],
                                [0, 0, 0, 1])
    assert not (valid_k == valid).all()


def test_tx_ty_equal_a_baseline_folded_into_the_extrinsic():
    """Through P, Tx/Ty of both cameras act as the translation t - R b_depth + b_rgb with
    b = (Tx / fx, Ty / fy, 0): the K-only registration with that extrinsic gives the same image."""
    scene = Scene(np.array([0.2, -0.1, 1.0]) / np.linalg.norm([0.2, -0.1, 1.0]), 2.2)
    k_d, k_rgb = pinhole(70, 68, 40.3, 30.1), pinhole(55, 57, 32.0, 23.5)
    p_d, p_rgb = with_t(k_d, -3.5, 0.7), with_t(k_rgb, 2.75, -1.1)
    rot = Rotation.from_rotvec([0.01, 0.05, -0.02])
    t = np.array([0.03, -0.01, 0.004])
    depth = render_depth(scene, k_d, 80, 60)
    out, valid = register_depth(depth, p_d, p_rgb, (64, 48), t, rot.as_quat())
    b_d, b_rgb = np.array([-3.5 / 70, 0.7 / 68, 0]), np.array([2.75 / 55, -1.1 / 57, 0])
    t_k = t - rot.as_matrix() @ b_d + b_rgb
    out_k, valid_k = register_depth(depth, k_d, k_rgb, (64, 48), t_k, rot.as_quat())
    np.testing.assert_array_equal(valid, valid_k)
    np.testing.assert_allclose(out[valid], out_k[valid], rtol=1e-6)
    assert valid.sum() > 1000
