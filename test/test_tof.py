"""The ToF camera model (naima_ros.data.tof): each component does what its docstring says, seeded."""

import numpy as np
import pytest

from naima_ros.data.tof import COMPONENTS, CONDITIONS, TOF_RANGES, draw_sensor, simulate_tof


def scene(h=64, w=96, seed=0):
    """A wall at 2 m with a box at 1 m in front, a dark stripe on the wall."""
    rng = np.random.default_rng(seed)
    depth = np.full((h, w), 2.0)
    depth[16:48, 24:56] = 1.0
    rgb = np.full((h, w, 3), 180, np.uint8)
    rgb[:, 72:] = 3  # nearly black
    rgb = np.clip(rgb.astype(int) + rng.integers(-5, 6, rgb.shape), 0, 255).astype(np.uint8)
    return depth, np.ones((h, w), bool), rgb


def test_footprint_alone_is_the_block_mean():
    depth, valid, rgb = scene()
    lr, sensor = simulate_tof(depth, valid, rgb, (8, 12), np.random.default_rng(0), CONDITIONS["footprint"])
    np.testing.assert_allclose(lr, depth.reshape(8, 8, 12, 8).mean(axis=(1, 3)), atol=1e-6)
    assert sensor.components == ("footprint",)


def test_footprints_with_little_ground_truth_are_holes():
    depth, valid, rgb = scene()
    valid[:8, :8] = False  # a whole footprint without ground truth
    valid[8:16, :3] = False  # 3/8 of a footprint
    lr, _ = simulate_tof(depth, valid, rgb, (8, 12), np.random.default_rng(0), ("footprint",))
    assert np.isnan(lr[0, 0]) and lr[1, 0] == pytest.approx(2.0)


def test_seeded_draws_repeat_and_cover_the_ranges():
    depth, valid, rgb = scene()
    a, sa = simulate_tof(depth, valid, rgb, (16, 24), np.random.default_rng(5))
    b, sb = simulate_tof(depth, valid, rgb, (16, 24), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert sa == sb and sa.components == COMPONENTS
    draws = [draw_sensor(np.random.default_rng(i)) for i in range(200)]
    for key, (lo, hi) in TOF_RANGES.items():
        values = [d[key] for d in draws]
        assert lo <= min(values) and max(values) <= hi and max(values) - min(values) > 0.8 * (hi - lo), key


def test_noise_grows_with_depth_and_is_quantised():
    depth, valid = np.full((256, 256), 1.0), np.ones((256, 256), bool)
    depth[:, 128:] = 4.0
    rgb = np.full((256, 256, 3), 200, np.uint8)
    lr, sensor = simulate_tof(depth, valid, rgb, (64, 64), np.random.default_rng(1), CONDITIONS["noise"])
    near, far = lr[:, :31] - 1.0, lr[:, 33:] - 4.0
    expected = [sensor["noise_rel"] * z + sensor["noise_quad"] * z**2 for z in (1.0, 4.0)]
    assert np.std(near) == pytest.approx(expected[0], rel=0.3) and np.std(far) == pytest.approx(expected[1], rel=0.3)
    np.testing.assert_allclose(lr * 1000, np.round(lr * 1000), atol=1e-3)  # 1 mm steps


def test_flying_pixels_and_edge_dropouts_only_at_discontinuities():
    depth, valid, rgb = scene()
    rgb[:] = 180
    lr, _ = simulate_tof(depth, valid, rgb, (16, 24), np.random.default_rng(3), ("footprint", "flying"))
    clean = depth.reshape(16, 4, 24, 4).mean(axis=(1, 3))
    edge = np.zeros((16, 24), bool)
    edge[3:13, 5:15] = True
    edge[5:11, 7:13] = False  # cells whose footprint straddles the box outline (rows 16/48, cols 24/56)
    changed = ~np.isclose(np.nan_to_num(lr, nan=-1), clean)
    assert changed.any() and not changed[~edge].any()
    assert np.nanmin(lr) >= 1.0 - 1e-9 and np.nanmax(lr) <= 2.0 + 1e-9  # blends stay between the surfaces


def test_dark_far_surfaces_drop_out():
    depth, valid, rgb = scene()
    sensor = draw_sensor(np.random.default_rng(0), ("footprint", "dark_dropout"))
    sensor.values.update(dark_signal=0.01, dark_drop_prob=1.0)
    lr, _ = simulate_tof(depth, valid, rgb, (16, 24), np.random.default_rng(0), sensor=sensor)
    assert np.isnan(lr[:, 18:]).all() and np.isfinite(lr[:, :18]).all()


def test_multipath_biases_concave_corners_not_planes():
    y, x = np.mgrid[0:128, 0:128]
    corner = 3.0 - 0.01 * np.abs(x - 64)  # a concave corner seen from inside: farthest at the crease
    tilted = 2.0 + 0.005 * x + 0.002 * y
    rgb = np.full((128, 128, 3), 200, np.uint8)
    valid = np.ones((128, 128), bool)
    sensor = draw_sensor(np.random.default_rng(0), ("footprint", "multipath"))
    sensor.values["multipath"] = 0.03
    for depth, biased in ((corner, True), (tilted, False)):
        lr, _ = simulate_tof(depth, valid, rgb, (32, 32), np.random.default_rng(0), sensor=sensor)
        bias = lr - depth.reshape(32, 4, 32, 4).mean(axis=(1, 3))
        assert (bias >= -1e-6).all()  # float32 output
        assert (bias[:, 15:17].mean() > 0.02) if biased else np.abs(bias).max() < 1e-5


def test_misregistration_moves_the_depth_not_the_grid():
    depth, valid, rgb = scene(64, 64)
    sensor = draw_sensor(np.random.default_rng(0), ("misregistration", "footprint"))
    sensor.values.update(shift_y_lr_px=0.0, shift_x_lr_px=1.0)
    lr, _ = simulate_tof(depth, valid, rgb, (8, 8), np.random.default_rng(0), sensor=sensor)
    clean = depth.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    np.testing.assert_allclose(lr[:, 1:], clean[:, :-1])


def test_aligned_is_the_whole_sensor_without_its_shift():
    """Same seed, same sensor: ``aligned`` equals ``tof`` with the misregistration set to zero."""
    depth, valid, rgb = scene(64, 96)
    assert set(CONDITIONS["aligned"]) == set(COMPONENTS) - {"misregistration"}
    aligned, drawn = simulate_tof(depth, valid, rgb, (8, 12), np.random.default_rng(3), CONDITIONS["aligned"])
    rng = np.random.default_rng(3)
    sensor = draw_sensor(rng, COMPONENTS)
    assert sensor.values == drawn.values
    sensor.values.update(shift_y_lr_px=0.0, shift_x_lr_px=0.0)
    unshifted, _ = simulate_tof(depth, valid, rgb, (8, 12), rng, sensor=sensor)  # rng where simulate_tof's was
    shifted, _ = simulate_tof(depth, valid, rgb, (8, 12), np.random.default_rng(3), CONDITIONS["tof"])
    np.testing.assert_array_equal(aligned, unshifted)
    assert not np.array_equal(np.nan_to_num(aligned), np.nan_to_num(shifted))


def test_bad_arguments_are_named():
    depth, valid, rgb = scene()
    with pytest.raises(ValueError, match="integer ratio"):
        simulate_tof(depth, valid, rgb, (10, 12), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown ToF component"):
        simulate_tof(depth, valid, rgb, (8, 12), np.random.default_rng(0), ("footprint", "sunlight"))
