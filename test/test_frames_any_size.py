"""Any depth a sensor sends: hole-aware resampling, binning onto the model's grid, robust normalisation."""

import numpy as np
import pytest

from naima_ros.frames import (ASPECT_TOLERANCE, DepthGrid, NoValidDepthError, depth_grid, normalisation_range,
                              prepare_frame, support_mask)
from naima_ros.resample import bin_valid_median, resample_valid


def plane(h, w, a=0.01, b=0.005, c=1.5, scale_xy=1.0):
    """Depth of a tilted plane sampled at pixel centres of an h x w image (coordinates in units of scale_xy)."""
    y, x = np.mgrid[0:h, 0:w]
    return (c + a * (x + 0.5) * scale_xy + b * (y + 0.5) * scale_xy).astype(np.float64)


@pytest.mark.parametrize("size_in,size_out", [((144, 192), (96, 128)), ((144, 192), (48, 64)),
                                              ((144, 192), (200, 256)), ((172, 224), (90, 117))])
def test_a_plane_stays_a_plane(size_in, size_out):
    """The same physical plane at both resolutions: resampling one gives the other (away from the outermost
    pixel); exact upwards, within an eighth of the slope per input pixel downwards (1.25 mm at 1 cm/px)."""
    (h, w), (out_h, out_w) = size_in, size_out
    fine = plane(h, w)
    expected = plane(out_h, out_w, scale_xy=w / out_w) if abs(h / out_h - w / out_w) < 1e-9 else None
    got, valid = resample_valid(fine, np.ones_like(fine, bool), size_out)
    assert valid.all() and got.shape == size_out and got.dtype == np.float32
    if expected is None:  # aspect ratios differ slightly: compare with the plane at the output's centres
        y, x = np.mgrid[0:out_h, 0:out_w]
        expected = 1.5 + 0.01 * (x + 0.5) * w / out_w + 0.005 * (y + 0.5) * h / out_h
    inner = (slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(got[inner], expected[inner], atol=1.25e-3 if out_h < h else 1e-6)


def test_binning_a_plane_gives_the_plane_at_cell_centres():
    fine = plane(480, 640)
    got, valid = bin_valid_median(fine, np.ones_like(fine, bool), (60, 80))
    assert valid.all()
    np.testing.assert_allclose(got, plane(60, 80, scale_xy=8.0), atol=1e-6)


def test_an_edge_does_not_bleed_across_empty_cells():
    """Foreground | an empty column | background: upsampled or resampled, no output mixes the two sides."""
    depth = np.full((6, 9), 1.0)
    depth[:, 5:] = 3.0
    valid = np.ones_like(depth, bool)
    valid[:, 4] = False
    for size in [(12, 18), (6, 9), (9, 13), (4, 6)]:
        got, got_valid = resample_valid(depth, valid, size)
        values = got[got_valid]
        assert np.all(np.isclose(values, 1.0) | np.isclose(values, 3.0)), (size, np.unique(values))
        if size[1] >= depth.shape[1]:
            assert not got_valid.all()  # the empty column left a hole (downwards it is under half a cell)
    binned, binned_valid = bin_valid_median(np.kron(depth, np.ones((2, 2))), np.kron(valid, np.ones((2, 2), bool)),
                                            (6, 9))
    assert not binned_valid[:, 4].any() and np.isnan(binned[:, 4]).all()
    np.testing.assert_array_equal(binned[:, :4], 1.0)
    np.testing.assert_array_equal(binned[:, 5:], 3.0)


def test_a_cell_with_one_valid_sample_gives_that_sample():
    depth = np.zeros((8, 8))
    valid = np.zeros((8, 8), bool)
    depth[1, 2], valid[1, 2] = 2.345, True  # cell (0, 0) of a 2x2 grid: one sample
    depth[5:8, 4:7], valid[5:8, 4:7] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 100.0]], True  # cell (1, 1)
    got, got_valid = bin_valid_median(depth, valid, (2, 2))
    np.testing.assert_array_equal(got_valid, [[True, False], [False, True]])
    assert got[0, 0] == pytest.approx(2.345, abs=1e-6)
    assert got[1, 1] == pytest.approx(5.0)  # the median: the outlier 100 does not move it
    lone, lone_valid = resample_valid(depth[:4, :4], valid[:4, :4], (4, 4), min_coverage=1e-6)
    assert lone_valid[1, 2] and lone[1, 2] == pytest.approx(2.345, abs=1e-6)


@pytest.mark.parametrize("rgb_hw,depth_hw,scale,expected", [
    ((480, 640), (60, 80), 8, DepthGrid((480, 640), (60, 80), 8, "native")),
    ((480, 640), (120, 160), 8, DepthGrid((480, 640), (120, 160), 4, "native")),  # integer ratios as before
    ((384, 512), (144, 192), 4, DepthGrid((384, 512), (96, 128), 4, "resampled")),  # phone ToF, ratio 2.667
    ((384, 512), (144, 192), 8, DepthGrid((384, 512), (48, 64), 8, "resampled")),
    ((480, 640), (480, 640), 8, DepthGrid((480, 640), (60, 80), 8, "binned")),  # driver-aligned depth
    ((720, 1280), (720, 1280), 16, DepthGrid((720, 1280), (45, 80), 16, "binned")),
    ((480, 640), (180, 240), 8, DepthGrid((480, 640), (60, 80), 8, "resampled")),
    ((100, 130), (30, 39), 8, DepthGrid((100, 130), (12, 16), 8, "resampled")),  # the method's size is resized
])
def test_depth_grid_modes(rgb_hw, depth_hw, scale, expected):
    grid = depth_grid(rgb_hw, depth_hw, scale)
    assert grid == expected
    assert grid.resized == (grid.method_hw != rgb_hw)


def test_aspect_ratios_that_disagree_are_refused():
    with pytest.raises(ValueError, match="different aspect ratios"):
        depth_grid((720, 1280), (172, 224), 4)  # a PMD 224x172 under a 16:9 RGB
    h, w = 480, 640
    depth_grid((h, w), (round(h / 2.5), round(w / 2.5 * (1 + ASPECT_TOLERANCE / 2))), 4)  # within the tolerance


def test_robust_normalisation_ignores_a_few_outliers():
    depth = np.linspace(1.0, 2.0, 400).reshape(20, 20)
    depth[0, :2] = [0.2, 9.5]  # a flying pixel and a specular spike
    low, span = normalisation_range(depth, np.ones_like(depth, bool))
    assert 0.99 < low < 1.05 and 0.9 < span < 1.05  # min/max would give 0.2 and 9.3


def test_prepare_frame_on_a_non_integer_ratio_and_aligned_sparse_depth():
    rgb = np.zeros((384, 512, 3), np.uint8)
    fine = plane(384, 512, a=0.002, b=0.001)
    tof = plane(144, 192, a=0.002, b=0.001, scale_xy=512 / 192).astype(np.float32)
    frame = prepare_frame(rgb, tof, 0.1, 10.0, scale=8)
    assert frame.grid == DepthGrid((384, 512), (48, 64), 8, "resampled") and frame.valid.all()
    back = frame.to_metres(frame.depth_norm.repeat(8, 0).repeat(8, 1))
    assert back.shape == (384, 512)
    sparse = np.full((384, 512), np.nan, np.float32)
    sparse[::3, ::5] = fine[::3, ::5]  # what a registration leaves: scattered samples, gaps between
    frame = prepare_frame(rgb, sparse, 0.1, 10.0, scale=8)
    assert frame.grid.mode == "binned" and frame.valid.all()
    np.testing.assert_allclose(frame.depth_grid_m, plane(48, 64, a=0.002, b=0.001, scale_xy=8.0), atol=6e-3)
    sparse[:200] = np.nan
    frame = prepare_frame(rgb, sparse, 0.1, 10.0, scale=8)
    assert not frame.valid[:24].any() and frame.valid[26:].all()
    with pytest.raises(NoValidDepthError):
        prepare_frame(rgb, np.full((384, 512), np.nan, np.float32), scale=8)


def test_support_mask_on_any_grid():
    valid = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(support_mask(valid, (4, 4)), np.kron(valid, np.ones((2, 2), bool)))
    odd = support_mask(valid, (3, 5))
    assert odd.shape == (3, 5) and odd[0, 0] and not odd[0, 4] and odd[2, 4]
