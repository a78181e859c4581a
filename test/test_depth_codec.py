"""depth_codec: hand-made buffers, rosbags-image as an independent decoder, and error paths."""
import array
import sys

import numpy as np
import pytest

from naima_ros.depth_codec import decode_color, decode_depth, encode_depth

from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
RosbagsImage = TYPESTORE.types["sensor_msgs/msg/Image"]
Header = TYPESTORE.types["std_msgs/msg/Header"]
Time = TYPESTORE.types["builtin_interfaces/msg/Time"]


@pytest.fixture(scope="module")
def rosbags_image():
    """rosbags-image, the independent decoder (it imports cv2: opencv-python-headless)."""
    try:
        import rosbags.image
    except ImportError as err:
        pytest.skip(f"optional cross-check: rosbags-image with OpenCV (requirements-dev.txt) is missing: {err}")
    return rosbags.image


def rosbags_msg(data: bytes, encoding, height, width, step, is_bigendian=False):
    return RosbagsImage(header=Header(stamp=Time(sec=1, nanosec=2), frame_id="cam"),
                        height=height, width=width, encoding=encoding,
                        is_bigendian=int(is_bigendian), step=step,
                        data=np.frombuffer(data, dtype=np.uint8).copy())


def pad_rows(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Row-major bytes of (H, W[, C]) pixels with `pad` junk bytes after every row."""
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8).reshape(pixels.shape[0], -1)
    junk = np.full((rows.shape[0], pad), 0xAB, dtype=np.uint8)
    padded = np.concatenate([rows, junk], axis=1)
    return padded.tobytes(), padded.shape[1]


def test_16uc1_hand_case_mm_to_m_and_zero_invalid():
    mm = np.array([[0, 1000], [65535, 1]], dtype="<u2")
    depth_m, valid = decode_depth(mm.tobytes(), "16UC1", 2, 2, 4, False)
    assert depth_m.dtype == np.float32 and depth_m.shape == (2, 2)
    np.testing.assert_array_equal(valid, [[False, True], [True, True]])
    assert np.isnan(depth_m[0, 0])
    np.testing.assert_allclose(depth_m[valid], [1.0, 65.535, 0.001], rtol=1e-6)


def test_32fc1_hand_case_nan_inf_nonpositive_invalid():
    m = np.array([[np.nan, np.inf, -np.inf], [0.0, -1.0, 2.5]], dtype="<f4")
    depth_m, valid = decode_depth(m.tobytes(), "32FC1", 2, 3, 12)
    np.testing.assert_array_equal(valid, [[False] * 3, [False, False, True]])
    assert np.isnan(depth_m[~valid]).all() and depth_m[1, 2] == np.float32(2.5)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16", "32FC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_matches_rosbags_image(rosbags_image, encoding, bigendian):
    rng = np.random.default_rng(0)
    h, w = 7, 11
    if encoding == "32FC1":
        values = rng.uniform(0.1, 9.0, (h, w)).astype(np.float32)
        values[rng.random((h, w)) < 0.2] = np.nan
        raw = values.astype(">f4" if bigendian else "<f4")
    else:
        values = rng.integers(0, 65536, (h, w)).astype(np.uint16)
        raw = values.astype(">u2" if bigendian else "<u2")
    data = raw.tobytes()
    reference = rosbags_image.message_to_cvimage(
        rosbags_msg(data, encoding, h, w, raw.itemsize * w, bigendian))
    depth_m, valid = decode_depth(data, encoding, h, w, raw.itemsize * w, bigendian)
    if encoding == "32FC1":
        np.testing.assert_array_equal(depth_m, reference)  # NaN positions compare equal
        np.testing.assert_array_equal(valid, np.isfinite(reference))
    else:
        np.testing.assert_array_equal(valid, reference != 0)
        np.testing.assert_allclose(depth_m[valid] * 1000.0, reference[valid], atol=2e-3)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_color_matches_rosbags_image(rosbags_image, encoding):
    rng = np.random.default_rng(1)
    h, w = 5, 9
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    data = pixels.tobytes()
    reference = rosbags_image.message_to_cvimage(
        rosbags_msg(data, encoding, h, w, w * channels), "rgb8")
    rgb = decode_color(data, encoding, h, w, w * channels)
    assert rgb.dtype == np.uint8 and rgb.shape == (h, w, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, reference)


def test_bgr_hand_case_swaps_channels():
    bgr = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    np.testing.assert_array_equal(decode_color(bgr.tobytes(), "bgr8", 1, 2, 6),
                                  [[[3, 2, 1], [6, 5, 4]]])


@pytest.mark.parametrize("encoding,dtype", [("16UC1", "<u2"), ("32FC1", "<f4"), ("16UC1", ">u2")])
@pytest.mark.parametrize("pad", [1, 3, 8])
def test_depth_step_padding_is_skipped(encoding, dtype, pad):
    rng = np.random.default_rng(2)
    values = (rng.integers(1, 5000, (4, 6)).astype(dtype) if "u" in dtype
              else rng.uniform(0.5, 3, (4, 6)).astype(dtype))
    data, step = pad_rows(values, pad)
    assert step == 6 * values.itemsize + pad
    depth_m, valid = decode_depth(data, encoding, 4, 6, step, dtype.startswith(">"))
    unpadded, _ = decode_depth(values.tobytes(), encoding, 4, 6, 6 * values.itemsize,
                               dtype.startswith(">"))
    assert valid.all()
    np.testing.assert_array_equal(depth_m, unpadded)


@pytest.mark.parametrize("encoding,channels", [("rgb8", 3), ("bgra8", 4), ("mono8", 1)])
def test_color_step_padding_is_skipped(encoding, channels):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (3, 5, channels), dtype=np.uint8)
    data, step = pad_rows(pixels, 5)
    np.testing.assert_array_equal(decode_color(data, encoding, 3, 5, step),
                                  decode_color(pixels.tobytes(), encoding, 3, 5, 5 * channels))


def test_accepts_array_array_payload_as_rclpy_gives():
    mm = np.array([[1500, 0]], dtype="<u2")
    depth_m, valid = decode_depth(array.array("B", mm.tobytes()), "16UC1", 1, 2, 4)
    np.testing.assert_allclose(depth_m[0, 0], 1.5)
    assert valid.tolist() == [[True, False]]


@pytest.mark.parametrize("call,match", [
    (lambda: decode_depth(b"\0" * 12, "rgb8", 2, 2, 6), r"unsupported depth encoding 'rgb8'.*2x2"),
    (lambda: decode_depth(b"\0" * 8, "16SC1", 2, 2, 4), r"unsupported depth encoding '16SC1'"),
    (lambda: decode_color(b"\0" * 8, "16UC1", 2, 2, 4), r"unsupported colour encoding '16UC1'"),
    (lambda: decode_color(b"\0" * 8, "yuv422", 2, 2, 4), r"unsupported colour encoding"),
    (lambda: decode_depth(b"", "16UC1", 0, 0, 0), r"empty image.*size=0x0"),
    (lambda: decode_color(b"", "rgb8", 4, 0, 0), r"empty image"),
    (lambda: decode_depth(b"\0" * 8, "16UC1", 2, 2, 3), r"step is smaller.*step=3"),
    (lambda: decode_depth(b"\0" * 7, "16UC1", 2, 2, 4),
     r"data holds 7 bytes but step \* height = 8"),
    (lambda: decode_color(b"\0" * 20, "rgb8", 2, 2, 6), r"data holds 20 bytes.*size=2x2 step=6"),
    (lambda: encode_depth(np.zeros((2, 2)), "8UC1"), r"unsupported output depth encoding '8UC1'"),
    (lambda: encode_depth(np.zeros(4), "32FC1"), r"must be \(H, W\)"),
])
def test_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_encode_32fc1_round_trip_and_invalid_to_nan():
    depth = np.array([[1.25, np.nan], [np.inf, -2.0]], dtype=np.float32)
    enc = encode_depth(depth, "32FC1")
    assert (enc.encoding, enc.height, enc.width, enc.step) == ("32FC1", 2, 2, 8)
    assert enc.is_bigendian == (sys.byteorder == "big")
    back, valid = decode_depth(enc.data, enc.encoding, enc.height, enc.width, enc.step,
                               enc.is_bigendian)
    assert valid.tolist() == [[True, False], [False, False]]
    assert back[0, 0] == np.float32(1.25) and np.isnan(back[~valid]).all()


def test_encode_16uc1_rounds_mm_and_zeroes_invalid_and_out_of_range():
    depth = np.array([[1.2344, 1.2346, np.nan, 70.0, 0.0, 65.535]])
    enc = encode_depth(depth, "16UC1")
    assert enc.step == 12
    mm = np.frombuffer(enc.data, dtype=np.uint16)
    assert mm.tolist() == [1234, 1235, 0, 0, 0, 65535]
    back, valid = decode_depth(enc.data, "16UC1", 1, 6, 12, enc.is_bigendian)
    assert valid.tolist() == [[True, True, False, False, False, True]]
