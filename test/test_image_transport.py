"""naima_ros.image_transport: `compressed` and `compressedDepth` decoding, cross-checked against
OpenCV (the library the ROS plugins use) on payloads written by OpenCV exactly as the plugins lay
them out, and our encoders read back by OpenCV; refusal of decompression bombs before decoding.
"""
import struct
import zlib

import numpy as np
import pytest

from naima_ros.drops import DROP_REASONS, Drop
from naima_ros.image_transport import (
    decode_compressed_color,
    decode_compressed_depth,
    encode_compressed_color,
    encode_compressed_depth,
)

LIMIT = 10_000_000


@pytest.fixture(scope="module")
def cv2():
    return pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless, a dev dependency) "
                               "is needed for the cross-checks")


def scene_bgr(h=48, w=64, seed=0):
    """A smooth colour image with edges (JPEG-friendly but not trivial)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], axis=2)
    img[h // 4:h // 2, w // 4:w // 2] = rng.integers(0, 256, 3)
    return img.astype(np.uint8)


def depth_payload(cv2, values: np.ndarray, quant_a=0.0, quant_b=0.0) -> bytes:
    """compressed_depth_image_transport's layout: ConfigHeader (int32, 2 x float32), then PNG."""
    ok, png = cv2.imencode(".png", values)
    assert ok
    return struct.pack("<iff", 0, quant_a, quant_b) + png.tobytes()


# ------------------------------------------------------------------ colour vs OpenCV
@pytest.mark.parametrize("fmt", ["bgr8; jpeg compressed bgr8", "jpeg", ""])
def test_jpeg_from_opencv_matches_opencv_decoder(cv2, fmt):
    bgr = scene_bgr()
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    rgb = decode_compressed_color(buf.tobytes(), fmt, max_input_pixels=LIMIT)
    reference = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    # both use libjpeg(-turbo); IDCT/upsampling details may differ by a level or two
    diff = np.abs(rgb.astype(int) - reference.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.5
    # and it is the picture that was encoded, in RGB order
    assert np.abs(rgb.astype(int) - bgr[..., ::-1].astype(int)).mean() < 4


def test_png_colour_and_grey_from_opencv_are_exact(cv2):
    bgr = scene_bgr(seed=1)
    _, buf = cv2.imencode(".png", bgr)
    rgb = decode_compressed_color(buf, "rgb8; png compressed bgr8", max_input_pixels=LIMIT)
    np.testing.assert_array_equal(rgb, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])
    grey = bgr[..., 1].copy()
    _, buf = cv2.imencode(".png", grey)
    rgb = decode_compressed_color(buf.tobytes(), "mono8; png compressed mono8",
                                  max_input_pixels=LIMIT)
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=2))
    # 16-bit colour (bgr16): both keep the high byte
    bgr16 = bgr.astype(np.uint16) * 257 + 100
    _, buf = cv2.imencode(".png", bgr16)
    np.testing.assert_array_equal(
        decode_compressed_color(buf.tobytes(), "bgr16; png compressed bgr16",
                                max_input_pixels=LIMIT),
        cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    _, buf = cv2.imencode(".png", bgra)
    np.testing.assert_array_equal(
        decode_compressed_color(buf.tobytes(), "bgra8; png compressed bgra8",
                                max_input_pixels=LIMIT), bgr[..., ::-1])


def test_colour_encoder_is_read_by_opencv(cv2):
    rgb = scene_bgr(seed=2)[..., ::-1].copy()
    payload = encode_compressed_color(rgb, "png")
    assert payload.format == "rgb8; png compressed bgr8"
    decoded = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[..., ::-1], rgb)
    payload = encode_compressed_color(rgb, "jpeg", jpeg_quality=95)
    assert payload.format == "rgb8; jpeg compressed bgr8"
    decoded = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(decoded[..., ::-1].astype(int) - rgb.astype(int)).mean() < 4


# ------------------------------------------------------------------ compressedDepth vs OpenCV
def test_compressed_depth_16uc1_from_opencv(cv2):
    rng = np.random.default_rng(3)
    mm = rng.integers(200, 9000, (30, 40)).astype(np.uint16)
    mm[::7, ::5] = 0
    for fmt in ("16UC1; compressedDepth png", "16UC1; compressedDepth", "mono16; compressedDepth"):
        depth_m, valid = decode_compressed_depth(depth_payload(cv2, mm), fmt,
                                                 max_input_pixels=LIMIT)
        np.testing.assert_array_equal(valid, mm != 0)
        np.testing.assert_allclose(depth_m[valid], mm[mm != 0] * 1e-3, rtol=1e-6)
        assert np.isnan(depth_m[~valid]).all() and depth_m.dtype == np.float32


def test_compressed_depth_32fc1_inverse_depth_from_opencv(cv2):
    """The plugin's quantisation, written here from its formulas, then OpenCV's PNG."""
    z0, depth_max = 100.0, 10.0
    a = np.float32(z0 * (z0 + 1.0))
    b = np.float32(1.0 - a / np.float32(depth_max))
    rng = np.random.default_rng(4)
    depth = rng.uniform(0.3, 9.5, (24, 32)).astype(np.float32)
    depth[0, :5] = np.nan
    depth[1, :5] = 12.0  # beyond depth_max: stored as 0
    with np.errstate(invalid="ignore"):
        keep = depth < depth_max
    inv = np.zeros(depth.shape, np.uint16)
    inv[keep] = (a / depth[keep] + b).astype(np.uint16)  # C++ float -> unsigned short truncates
    decoded, valid = decode_compressed_depth(depth_payload(cv2, inv, a, b),
                                             "32FC1; compressedDepth png", max_input_pixels=LIMIT)
    np.testing.assert_array_equal(valid, keep)
    expected = a / (inv[keep].astype(np.float32) - b)
    np.testing.assert_allclose(decoded[keep], expected, rtol=1e-6)
    # one quantisation step is d^2 / a: the decoded depth is within a step of the original
    assert (np.abs(decoded[keep] - depth[keep]) <= depth[keep] ** 2 / a * 1.01 + 1e-6).all()


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_encoder_is_read_by_opencv_and_round_trips(cv2, encoding):
    rng = np.random.default_rng(5)
    depth = rng.uniform(0.5, 8.0, (20, 30)).astype(np.float32)
    depth[3, 3] = np.nan
    depth[4, 4] = 11.0  # >= depth_max 10 m
    payload = encode_compressed_depth(depth, encoding)
    assert payload.format == f"{encoding}; compressedDepth png"
    fmt_id, qa, qb = struct.unpack("<iff", payload.data[:12])
    png = cv2.imdecode(np.frombuffer(payload.data[12:], np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == depth.shape and fmt_id == 0
    assert png[3, 3] == 0 and png[4, 4] == 0
    decoded, valid = decode_compressed_depth(payload.data, payload.format,
                                             max_input_pixels=LIMIT)
    assert not valid[3, 3] and not valid[4, 4] and valid.sum() == depth.size - 2
    if encoding == "16UC1":
        assert (qa, qb) == (0.0, 0.0)
        np.testing.assert_array_equal(png[valid], np.rint(depth[valid] * 1000))
        assert np.abs(decoded[valid] - depth[valid]).max() <= 0.0005 + 1e-6
    else:
        assert qa == pytest.approx(100 * 101) and qb == pytest.approx(1 - 10100 / 10)
        assert (np.abs(decoded[valid] - depth[valid]) <= depth[valid] ** 2 / qa * 1.01).all()


# ------------------------------------------------------------------ bombs and bad input
def png_declaring(width: int, height: int, bit_depth=8, colour_type=2) -> bytes:
    """A PNG whose IHDR declares width x height but whose data is a few bytes."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def jpeg_declaring(cv2, width: int, height: int) -> bytes:
    """An OpenCV JPEG with the size in its SOF0 marker rewritten."""
    _, buf = cv2.imencode(".jpg", scene_bgr(16, 16))
    data = bytearray(buf.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_bomb_png_is_refused_before_decoding():
    bomb = png_declaring(12000, 12000)  # 144 M pixels, 432 MB decoded, from 100 bytes
    with pytest.raises(Drop) as err:
        decode_compressed_color(bomb, "png", max_input_pixels=LIMIT)
    assert err.value.reason == "oversized" and "12000x12000" in str(err.value)
    bomb = png_declaring(60000, 60000)  # beyond Pillow's own hard limit too
    with pytest.raises(Drop) as err:
        decode_compressed_color(bomb, "png", max_input_pixels=LIMIT)
    assert err.value.reason == "oversized" and "max_input_pixels=10000000" in str(err.value)
    depth_bomb = struct.pack("<iff", 0, 0, 0) + png_declaring(30000, 30000, 16, 0)
    with pytest.raises(Drop) as err:
        decode_compressed_depth(depth_bomb, "16UC1; compressedDepth png", max_input_pixels=LIMIT)
    assert err.value.reason == "oversized" and "max_input_pixels=10000000" in str(err.value)


def test_bomb_jpeg_is_refused_before_decoding(cv2):
    with pytest.raises(Drop) as err:
        decode_compressed_color(jpeg_declaring(cv2, 12000, 12000), "bgr8; jpeg compressed bgr8",
                                max_input_pixels=LIMIT)
    assert err.value.reason == "oversized" and "12000x12000" in str(err.value)


def test_limit_is_inclusive_and_applies_to_real_images(cv2):
    _, buf = cv2.imencode(".png", scene_bgr(48, 64))
    assert decode_compressed_color(buf, "png", max_input_pixels=48 * 64).shape == (48, 64, 3)
    with pytest.raises(Drop, match="3072 pixels > max_input_pixels=3071") as err:
        decode_compressed_color(buf, "png", max_input_pixels=48 * 64 - 1)
    assert err.value.reason == "oversized"


def test_malformed_and_unsupported_inputs(cv2):
    _, png = cv2.imencode(".png", scene_bgr())
    png = png.tobytes()
    cases = [
        (decode_compressed_color, png[: len(png) // 2], "png", "malformed_image"),  # truncated
        (decode_compressed_color, png, "bgr8; jpeg compressed bgr8", "malformed_image"),
        (decode_compressed_color, b"GIF89a....", "", "malformed_image"),
        (decode_compressed_color, png, "bgr8; tiff compressed bgr8", "unsupported_encoding"),
        (decode_compressed_color, png_declaring(4, 4, 16, 0), "png", "unsupported_encoding"),
        (decode_compressed_depth, b"\0" * 12, "16UC1; compressedDepth png", "malformed_image"),
        (decode_compressed_depth, b"\0" * 12 + png, "16UC1; compressedDepth png",
         "malformed_image"),  # an 8-bit colour PNG is no depth image
        (decode_compressed_depth, b"\0" * 40, "16UC1; compressedDepth rvl",
         "unsupported_encoding"),
        (decode_compressed_depth, b"\0" * 40, "8UC1; compressedDepth png",
         "unsupported_encoding"),
        (decode_compressed_depth, b"\0" * 40, "16UC1; png compressed", "unsupported_encoding"),
    ]
    for decode, data, fmt, reason in cases:
        with pytest.raises(Drop) as err:
            decode(data, fmt, max_input_pixels=LIMIT)
        assert err.value.reason == reason and reason in DROP_REASONS, (fmt, str(err.value))


def test_message_field_types_are_accepted():
    """rclpy gives uint8[] fields as array.array('B'); bytes, bytearray and memoryview work too."""
    import array

    depth = np.full((6, 8), 1.5, np.float32)
    payload = encode_compressed_depth(depth)
    colour = encode_compressed_color(np.full((4, 4, 3), 9, np.uint8), "png")
    for wrap in (bytes, bytearray, memoryview, lambda b: array.array("B", b)):
        decoded, valid = decode_compressed_depth(wrap(payload.data), payload.format,
                                                 max_input_pixels=LIMIT)
        assert valid.all() and np.allclose(decoded, 1.5)
        rgb = decode_compressed_color(wrap(colour.data), colour.format, max_input_pixels=LIMIT)
        assert (rgb == 9).all()


def test_encoder_argument_errors():
    with pytest.raises(ValueError, match="uint8"):
        encode_compressed_color(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="codec"):
        encode_compressed_color(np.zeros((4, 4, 3), np.uint8), "webp")
    with pytest.raises(ValueError, match="encoding"):
        encode_compressed_depth(np.ones((4, 4)), "8UC1")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        encode_compressed_depth(np.ones((4, 4, 1)))
