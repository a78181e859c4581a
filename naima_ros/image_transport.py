"""image_transport-style compressed images <-> numpy: `compressed` colour and `compressedDepth` depth.

ROS-free: takes the two fields of a `sensor_msgs/CompressedImage` (`format`, `data`) as plain
values, so the ROS node, the rosbag tools and tests share it. Decoding uses Pillow; the test suite
cross-checks it against OpenCV (what the ROS plugins use) on images written by OpenCV.

`compressed` (compressed_image_transport): `data` is a complete JPEG or PNG file; `format` is e.g.
`"bgr8; jpeg compressed bgr8"`, `"rgb8; png compressed bgr8"` or, from older publishers, `"jpeg"`.
The file's colours are standard whatever the encodings in `format` say (the publisher converts to
OpenCV's BGR before encoding), so colour is decoded to RGB; 8-bit grey is replicated, alpha dropped,
16-bit colour keeps its high byte (as OpenCV's IMREAD_COLOR does); 16-bit grey is refused.

`compressedDepth` (compressed_depth_image_transport, `codec.cpp`): `format` is
`"<encoding>; compressedDepth [png]"`; `data` is a 12-byte ConfigHeader (int32 compression format,
float32 depthQuantA, float32 depthQuantB; host byte order, little-endian on every ROS platform) and
then a 16-bit grey PNG holding
- for `16UC1`/`mono16`: the millimetres themselves (0 = invalid);
- for `32FC1`: quantised inverse depth v = depthQuantA / depth + depthQuantB (truncated to
  uint16) with depthQuantA = z0 * (z0 + 1), depthQuantB = 1 - depthQuantA / depth_max (z0 is the
  publisher's `depth_quantization`, default 100; depth_max default 10 m); 0 = invalid, decoded as
  depth = depthQuantA / (v - depthQuantB).
The plugin's `rvl` variant is not supported (refused with a clear reason).

Every decoder reads the image size from the file header and refuses it before decoding when it
declares more than `max_input_pixels` (a decompression bomb costs nothing). Failures raise
`naima_ros.drops.Drop`, whose `reason` is a drop counter name of the node: `oversized`,
`malformed_image` or `unsupported_encoding`.
"""
from __future__ import annotations

import io
import struct
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image

from naima_ros.depth_codec import MM_PER_M
from naima_ros.drops import Drop

__all__ = [
    "CompressedImagePayload",
    "decode_compressed_color",
    "decode_compressed_depth",
    "encode_compressed_color",
    "encode_compressed_depth",
]

DEPTH_HEADER = struct.Struct("<iff")  # compression format (INV_DEPTH = 0), depthQuantA, depthQuantB
INV_DEPTH = 0
MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
DEPTH_16U_ENCODINGS = ("16UC1", "mono16")
# compressed_depth_image_transport publisher defaults (its `depth_max`, `depth_quantization` params)
DEFAULT_DEPTH_MAX_M = 10.0
DEFAULT_DEPTH_QUANTIZATION = 100.0


class CompressedImagePayload(NamedTuple):
    """The fields of a `sensor_msgs/CompressedImage` payload, ready to copy into a message."""

    format: str
    data: bytes


def _declared_codec(fmt: str) -> str | None:
    """`jpeg`, `png` or None (nothing declared) from a `compressed` format string."""
    words = fmt.replace(";", " ").lower().split()
    codecs = {"jpeg" if w in ("jpeg", "jpg") else w for w in words} & {"jpeg", "png"}
    if len(codecs) > 1:
        raise Drop("unsupported_encoding", f"format {fmt!r} names both jpeg and png")
    if codecs:
        return codecs.pop()
    if any(w in ("compresseddepth", "rvl", "tiff", "h264", "theora") for w in words):
        raise Drop("unsupported_encoding", f"format {fmt!r} is not a jpeg/png "
                   f"`compressed` image")
    return None


def _open_header(data, codec: str, fmt: str, max_input_pixels: int, what: str) -> Image.Image:
    """Open a JPEG/PNG lazily (header only) and check its codec and declared size."""
    head = bytes(data[:8])
    if not head.startswith(MAGIC[codec]):
        raise Drop("malformed_image", f"{what}: format {fmt!r} says {codec} but the "
                   f"data ({len(data)} bytes) starts with {head.hex()}")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb limit warns; ours is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[codec.upper()])
    except Image.DecompressionBombError as exc:  # beyond even Pillow's hard limit
        raise Drop("oversized", f"{what}: {codec} header declares more than "
                   f"max_input_pixels={max_input_pixels}: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise Drop("malformed_image", f"{what}: cannot read the {codec} header "
                   f"({len(data)} bytes): {exc}") from exc
    width, height = image.size
    if width * height > max_input_pixels:
        raise Drop("oversized", f"{what}: {codec} header declares {width}x{height} "
                   f"= {width * height} pixels > max_input_pixels={max_input_pixels}")
    if width == 0 or height == 0:
        raise Drop("malformed_image", f"{what}: {codec} header declares an empty "
                   f"{width}x{height} image")
    return image


def _pixels(image: Image.Image, what: str) -> np.ndarray:
    """Decode an opened image; Pillow refuses truncated data (LOAD_TRUNCATED_IMAGES is off)."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        width, height = image.size
        raise Drop("malformed_image", f"{what}: cannot decode the {width}x{height} "
                   f"{image.format} image: {exc}") from exc
    return np.asarray(image)


def decode_compressed_color(data, fmt: str, *, max_input_pixels: int) -> np.ndarray:
    """Decode a `compressed` (JPEG/PNG) colour image to (H, W, 3) uint8 RGB.

    Args:
        data: the message's `data` (bytes-like).
        fmt: the message's `format`, e.g. `"bgr8; jpeg compressed bgr8"`; the codec it names
            must match the data; with none named (`""`) the data's signature decides.
        max_input_pixels: refuse, before decoding, a file whose header declares more pixels.

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous.

    Raises:
        Drop: reason `oversized`, `malformed_image` or `unsupported_encoding`
            (16-bit grey, a non-jpeg/png format).
    """
    data = memoryview(data).cast("B")
    codec = _declared_codec(fmt)
    if codec is None:
        codec = next((c for c, magic in MAGIC.items() if bytes(data[:8]).startswith(magic)), None)
        if codec is None:
            raise Drop("malformed_image", f"compressed rgb: format {fmt!r} names no "
                       f"codec and the data is neither jpeg nor png")
    what = "compressed rgb"
    image = _open_header(data, codec, fmt, max_input_pixels, what)
    if image.mode not in ("RGB", "L", "RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "1"):
        raise Drop("unsupported_encoding", f"{what}: {codec} of mode {image.mode!r} "
                   f"(only 8-bit colour or grey is an RGB input)")
    pixels = _pixels(image, what)
    if image.mode not in ("RGB", "L"):
        pixels = np.asarray(image.convert("RGB"))
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


def _depth_format(fmt: str) -> str:
    """The source encoding of a `compressedDepth` format string; refuses rvl and others."""
    encoding, _, rest = fmt.partition(";")
    encoding, words = encoding.strip(), rest.split()
    if not words or words[0] != "compressedDepth" or words[1:] not in ([], ["png"]):
        raise Drop("unsupported_encoding", f"compressedDepth: format {fmt!r} is not "
                   f"'<encoding>; compressedDepth [png]' (rvl is not supported)")
    if encoding not in DEPTH_16U_ENCODINGS + ("32FC1",):
        raise Drop("unsupported_encoding", f"compressedDepth: encoding {encoding!r} "
                   f"in format {fmt!r} (supported: 16UC1, mono16, 32FC1)")
    return encoding


def decode_compressed_depth(data, fmt: str, *,
                            max_input_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode a `compressedDepth` image to metres and a valid mask.

    Args:
        data: the message's `data`: 12-byte ConfigHeader, then a 16-bit grey PNG.
        fmt: the message's `format`, e.g. `"16UC1; compressedDepth png"`.
        max_input_pixels: refuse, before decoding, a PNG whose header declares more pixels.

    Returns:
        `(depth_m, valid)`: float32 (H, W) metres with NaN where invalid, and bool (H, W), as
        `depth_codec.decode_depth` returns for raw images.

    Raises:
        Drop: reason `oversized`, `malformed_image` or `unsupported_encoding`.
    """
    encoding = _depth_format(fmt)
    data = memoryview(data).cast("B")
    if len(data) <= DEPTH_HEADER.size:
        raise Drop("malformed_image", f"compressedDepth: {len(data)} bytes, not even "
                   f"the {DEPTH_HEADER.size}-byte header and a PNG")
    _, quant_a, quant_b = DEPTH_HEADER.unpack_from(data)
    what = "compressedDepth"
    image = _open_header(data[DEPTH_HEADER.size:], "png", fmt, max_input_pixels, what)
    if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise Drop("malformed_image", f"{what}: PNG of mode {image.mode!r}, "
                   f"expected 16-bit grey")
    values = _pixels(image, what)
    if values.dtype != np.uint16:  # mode "I" (int32) from older Pillow
        values = values.astype(np.uint16)
    valid = values != 0
    if encoding in DEPTH_16U_ENCODINGS:
        depth_m = values.astype(np.float32) * np.float32(1.0 / MM_PER_M)
    else:
        # float32 arithmetic, as the plugin decodes
        with np.errstate(divide="ignore", invalid="ignore"):
            depth_m = np.float32(quant_a) / (values.astype(np.float32) - np.float32(quant_b))
        valid &= np.isfinite(depth_m) & (depth_m > 0)
    depth_m[~valid] = np.nan
    return depth_m, valid


def _png_bytes(image: Image.Image, level: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=level)
    return out.getvalue()


def encode_compressed_color(rgb: np.ndarray, codec: str = "jpeg", *,
                            jpeg_quality: int = 95, png_level: int = 3) -> CompressedImagePayload:
    """Encode (H, W, 3) uint8 RGB as a `compressed` image, as compressed_image_transport would.

    Returns:
        `CompressedImagePayload(format="rgb8; <codec> compressed bgr8", data=<file bytes>)`.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.dtype} {rgb.shape}")
    image = Image.fromarray(np.ascontiguousarray(rgb))  # (H, W, 3) uint8 is RGB; `mode=` goes in Pillow 13
    if codec == "jpeg":
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=jpeg_quality)
        data = out.getvalue()
    elif codec == "png":
        data = _png_bytes(image, png_level)
    else:
        raise ValueError(f"codec must be 'jpeg' or 'png', got {codec!r}")
    return CompressedImagePayload(f"rgb8; {codec} compressed bgr8", data)


def encode_compressed_depth(depth_m: np.ndarray, encoding: str = "16UC1", *,
                            depth_max: float = DEFAULT_DEPTH_MAX_M,
                            depth_quantization: float = DEFAULT_DEPTH_QUANTIZATION,
                            png_level: int = 3) -> CompressedImagePayload:
    """Encode metres as a `compressedDepth` image, as compressed_depth_image_transport would.

    Args:
        depth_m: (H, W) metres; NaN, inf and <= 0 are invalid.
        encoding: `16UC1` (millimetres, rounded) or `32FC1` (quantised inverse depth).
        depth_max: depths at or beyond it are stored as invalid (metres).
        depth_quantization: z0 of the inverse-depth quantisation (32FC1 only).
        png_level: zlib level of the PNG.

    Returns:
        `CompressedImagePayload(format="<encoding>; compressedDepth png", data=header + PNG)`.
    """
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth_m.shape}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth_m) & (depth_m > 0) & (depth_m < depth_max)
    quant_a = quant_b = 0.0
    if encoding == "16UC1":
        values = np.rint(np.where(valid, depth_m, 0.0) * MM_PER_M)
        values[values > np.iinfo(np.uint16).max] = 0  # beyond 65.535 m: not representable
    elif encoding == "32FC1":
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0 - quant_a / np.float32(depth_max))
        with np.errstate(divide="ignore"):
            values = np.trunc(quant_a / np.where(valid, depth_m, np.inf) + quant_b)
        values[~valid] = 0
    else:
        raise ValueError(f"encoding must be '16UC1' or '32FC1', got {encoding!r}")
    values = np.clip(values, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    header = DEPTH_HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b))
    png = _png_bytes(Image.fromarray(values), png_level)
    return CompressedImagePayload(f"{encoding}; compressedDepth png", header + png)
