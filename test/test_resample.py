"""naima_ros.resample: the tap-table bicubic against an independent dense-matrix formulation.

Agreement with torch itself is test_predictors.py's `test_numpy_bicubic_equals_torch`.
"""

import numpy as np
import pytest

from naima_ros.resample import _axis_taps, upsample_bicubic


def dense_axis_matrix(size_in, size_out, a=-0.75):
    """(size_out, size_in) matrix of torch's 1-D bicubic (align_corners=False), one row at a time."""
    def kernel(x):
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0

    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        source = (i + 0.5) * size_in / size_out - 0.5
        base = int(np.floor(source))
        for j in range(base - 1, base + 3):
            matrix[i, min(max(j, 0), size_in - 1)] += kernel(source - j)
    return matrix


@pytest.mark.parametrize("size_in,size_out", [((60, 80), (480, 640)), ((30, 40), (240, 320)), ((7, 11), (56, 88)),
                                              ((1, 1), (8, 8)), ((2, 3), (32, 48)), ((10, 10), (7, 13)),
                                              ((9, 6), (9, 6))])
def test_upsample_equals_dense_matrices(size_in, size_out):
    x = np.random.default_rng(sum(size_out)).uniform(0.2, 5.0, size_in)
    expected = dense_axis_matrix(size_in[0], size_out[0]) @ x @ dense_axis_matrix(size_in[1], size_out[1]).T
    got = upsample_bicubic(x, size_out)
    assert got.shape == size_out and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6, atol=0)


def test_taps_are_cached_and_read_only():
    index, weights = _axis_taps(60, 480)
    assert _axis_taps(60, 480)[0] is index
    assert index.shape == weights.shape == (4, 480)
    assert index.min() == 0 and index.max() == 59
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-12)  # the cubic kernel is a partition of unity
    with pytest.raises(ValueError):
        weights[0, 0] = 1.0


def test_input_is_not_modified():
    x = np.random.default_rng(0).uniform(size=(6, 8)).astype(np.float32)
    before = x.copy()
    upsample_bicubic(x, (48, 64))
    np.testing.assert_array_equal(x, before)


def test_rejects_non_2d():
    with pytest.raises(ValueError, match="expected an"):
        upsample_bicubic(np.zeros((2, 3, 4)), (8, 8))
