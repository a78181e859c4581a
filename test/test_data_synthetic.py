"""Procedural RGB-D scenes: geometry, determinism, colour independent of depth, degradations."""

import numpy as np
import pytest

from naima_ros.data import synthetic as S


def test_primitives_against_analytic_depth():
    rays = np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0], [5.0, 0.0, 1.0]]).T  # (3, n), z component 1
    sphere = S._Sphere(np.array([0.0, 0.0, 3.0]), 0.5)
    t = sphere.intersect(rays)
    assert t[0] == pytest.approx(2.5) and np.isinf(t[2])
    point = rays[:, :1] * t[0]
    np.testing.assert_allclose(sphere.normal(point)[:, 0], [0, 0, -1], atol=1e-12)
    box = S._Box(np.eye(3), np.array([0.5, 0.5, 0.5]), np.array([0.0, 0.0, 2.0]))
    assert box.intersect(rays)[0] == pytest.approx(1.5) and np.isinf(box.intersect(rays)[2])
    room = S._Room(np.eye(3), np.array([2.0, 2.0, 4.0]), np.array([0.0, 0.0, 1.0]))
    t = room.intersect(rays)
    assert t[0] == pytest.approx(5.0) and t[2] == pytest.approx(0.4)  # back wall; side wall x = 2
    panel = S._Rectangle(np.array([0.0, 0.0, 2.0]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), 0.5, 0.5)
    assert panel.intersect(rays)[0] == pytest.approx(2.0) and np.isinf(panel.intersect(rays)[2])
    rod = S._Cylinder(np.array([0.0, -1.0, 2.0]), np.array([0.0, 1.0, 0.0]), 2.0, 0.01)
    assert rod.intersect(rays)[0] == pytest.approx(1.99) and np.isinf(rod.intersect(rays)[1])


def test_deterministic_from_seed_and_seeds_differ():
    a, b, c = S.generate_scene(11, 96, 128), S.generate_scene(11, 96, 128), S.generate_scene(12, 96, 128)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth_m, b.depth_m)
    assert not np.array_equal(a.depth_m, c.depth_m)
    g1 = S.generate_scene(np.random.default_rng(5), 64, 80)
    g2 = S.generate_scene(np.random.default_rng(5), 64, 80)
    np.testing.assert_array_equal(g1.rgb, g2.rgb)


def test_scene_contents():
    scene = S.generate_scene(3)
    assert scene.rgb.shape == (384, 512, 3) and scene.rgb.dtype == np.uint8
    assert scene.depth_m.shape == (384, 512) and scene.depth_m.dtype == np.float32
    assert np.isfinite(scene.depth_m).all() and 0.3 < scene.depth_m.min() < scene.depth_m.max() < 15.0
    frame = scene.to_frame()
    assert frame.name == "synthetic_3" and frame.minmax[0] == pytest.approx(float(scene.depth_m.min()))
    assert frame.depth_norm.min() == 0.0 and frame.depth_norm.max() == pytest.approx(1.0)
    assert scene.intrinsics[0] > 0 and scene.depth_measured_m is None


def _edges(image, threshold):
    gy, gx = np.gradient(image.astype(np.float64))
    return np.hypot(gx, gy) > threshold


def test_colour_does_not_follow_depth_edges():
    """Many colour edges lie where depth is smooth (texture), and some depth edges have no colour edge."""
    colour_only, depth_only = [], []
    for seed in range(4):
        scene = S.generate_scene(seed, 192, 256)
        grey = scene.rgb.astype(np.float64).mean(axis=2)
        depth_edges = _edges(scene.depth_m, 0.05)
        colour_edges = _edges(grey, 20.0)
        near_depth_edge = np.zeros_like(depth_edges)
        for dy in (-2, -1, 0, 1, 2):
            for dx in (-2, -1, 0, 1, 2):
                near_depth_edge |= np.roll(np.roll(depth_edges, dy, 0), dx, 1)
        colour_only.append((colour_edges & ~near_depth_edge).sum() / max(colour_edges.sum(), 1))
        depth_only.append((depth_edges & ~colour_edges).sum() / max(depth_edges.sum(), 1))
    assert np.mean(colour_only) > 0.5
    assert np.mean(depth_only) > 0.1


def test_degradations():
    config = S.DegradationConfig(quantisation_m=0.001)
    scene = S.generate_scene(4, 192, 256, degradation=config)
    measured, valid = scene.depth_measured_m, scene.measured_valid
    assert measured.shape == scene.depth_m.shape and valid.dtype == bool
    assert 0.02 < 1 - valid.mean() < 0.5 and (measured[~valid] == 0).all()
    steps = measured[valid] / 0.001
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-2)  # millimetre quantisation
    error = measured[valid] - scene.depth_m[valid]
    assert 0 < np.abs(error).mean() < 0.2
    near = scene.depth_m[valid] < np.median(scene.depth_m[valid])
    assert np.abs(error[~near]).mean() > np.abs(error[near]).mean()  # noise grows with distance
    clean = S.degrade_depth(scene.depth_m, scene.rgb, np.random.default_rng(0),
                            S.DegradationConfig(noise_m=0, noise_floor_m=0, quantisation_m=0, blob_holes=0,
                                                edge_hole_prob=0, dark_hole_prob=0, max_range_m=100))
    np.testing.assert_array_equal(clean[0], scene.depth_m)
    assert clean[1].all()
