"""`naima-bag make`: a sensor-like rosbag2 from the data package's datasets or procedural scenes.

Frames are `naima_ros.data.common.RGBDFrame`s, the records every loader returns: each carries its
depth unit's size in metres and its camera's intrinsics (where the dataset has them; otherwise a
60-degree horizontal field of view is assumed), so the sources are names of the dataset registry.

Each frame becomes, as a registered RGB-D camera driver would publish it:
  rgb/image_rect_color  rgb8 at the full resolution (H, W)
  rgb/camera_info       its calibration (K, P = [K | 0], plumb_bob with zero distortion)
  depth/image_rect      the low-resolution depth (H / s, W / s), 16UC1 mm or 32FC1 m,
                        registered to the RGB optical frame
  depth_gt/image_rect   the full-resolution ground truth, same encoding, stamped like the depth
The LR depth is what a ToF pixel sees: the mean of the valid ground truth over its s x s footprint
(mixed "flying" pixels at depth edges included), invalid where less than half of it is valid;
optionally degraded with `naima_ros.data.synthetic.degrade_depth` (holes, range limit, noise).

Timing is a sensor's: stamps at `rate_hz` with Gaussian jitter, the depth stamp a few ms off the
RGB stamp (separate sensors: approximate sync), log (receive) times a few ms after the stamps, and
randomly dropped RGB, depth or both. Procedural sequences pan a crop window across a wider
rendered room, so consecutive frames are coherent; a new room starts every `segment_frames`.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from naima_ros.bags.io import (CUSTOM_FRAMES_KEY, TYPESTORE, BagError, BagWriter, Topics,
                               depth_msg, header, rgb_msg)
from naima_ros.data.common import RGBDFrame, frame_from_metres
from naima_ros.data.registry import DATASETS, PROCEDURAL, bag_sources, canonical_name, open_dataset

__all__ = ["SOURCES", "LRConfig", "TimingConfig", "camera_intrinsics", "fit_frame", "frames_from_source", "lr_from_gt",
           "make_bag", "procedural_frames"]

SOURCES = bag_sources()  # procedural scenes, then the registry's datasets, spelled as everywhere
FRAME_ID = "camera_color_optical_frame"
START_TIME_NS = 1_700_000_000 * 1_000_000_000  # fixed, so a bag is reproducible from its seed
ASSUMED_HFOV_DEG = 60.0  # for datasets that ship no calibration


@dataclass(frozen=True)
class TimingConfig:
    """How the sensor's messages are stamped and lost.

    Attributes:
        rate_hz: frame rate.
        jitter_ms: Gaussian sigma of the stamp around the nominal frame time (clipped at 3 sigma).
        rgb_depth_offset_ms: the depth stamp is uniform within +- this of the RGB stamp.
        transport_ms: (min, max) of the uniform delay from stamp to log (receive) time.
        drop_rate: probability that a frame loses its RGB, its depth or both (1/4, 1/4, 1/2).
        gap_s: extra pause before the first frame of each source after the first.
        start_ns: stamp of the first frame.
    """

    rate_hz: float = 10.0
    jitter_ms: float = 2.0
    rgb_depth_offset_ms: float = 4.0
    transport_ms: tuple[float, float] = (3.0, 12.0)
    drop_rate: float = 0.03
    gap_s: float = 0.0
    start_ns: int = START_TIME_NS


@dataclass(frozen=True)
class LRConfig:
    """The low-resolution depth sensor.

    Attributes:
        scale: HR / LR size ratio (the model's scale).
        encoding: "16UC1" (mm, 0 invalid) or "32FC1" (m, NaN invalid); the GT topic uses it too.
        tof_holes: lose pixels like a ToF camera: blobs, depth edges, dark surfaces, beyond 8 m.
        tof_noise: distance-dependent Gaussian noise (sigma 2 mm + 4 mm * z^2).
        tof_model: the ToF camera of the sensor protocol instead (`naima_ros.data.tof`, every
            component, one sensor drawn per frame): footprint means, flying pixels, multipath,
            noise, dropouts, misregistration, 1 mm steps.
        real: use a frame's own sensor LR where it has one (the RGB-D-D real scenes' phone ToF, at
            its own size: 192x144 under a 512x384 RGB), so `scale` does not apply to it.
    """

    scale: int = 8
    encoding: str = "16UC1"
    tof_holes: bool = False
    tof_noise: bool = False
    tof_model: bool = False
    real: bool = False


# ---------------------------------------------------------------------- frames
def camera_intrinsics(frame: RGBDFrame) -> tuple[float, float, float, float]:
    """The frame's intrinsics, or those of a 60-degree horizontal field of view centred on it."""
    if frame.intrinsics is not None:
        return frame.intrinsics
    height, width = frame.depth.shape
    f = width / (2.0 * np.tan(np.deg2rad(ASSUMED_HFOV_DEG) / 2.0))
    return (f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def _with_pixels(frame: RGBDFrame, rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray,
                 intrinsics) -> RGBDFrame:
    """The frame with other pixels (a crop or a resampling) and the intrinsics that go with them."""
    minmax = (float(depth[valid].min()), float(depth[valid].max())) if valid.any() else frame.minmax
    return dataclasses.replace(frame, rgb=rgb, depth=depth, valid=valid, minmax=minmax,
                               intrinsics=intrinsics, depth_lr=None)


def fit_frame(frame: RGBDFrame, width: int, height: int) -> RGBDFrame:
    """Scale a frame to cover (width, height), then centre-crop; intrinsics follow.

    A frame at most 5 % larger than the target is only cropped (no resampling).

    RGB is resampled with area averaging / bilinear, depth and its validity with nearest
    neighbour (no depth values invented across edges).
    """
    h0, w0 = frame.depth.shape
    if (h0, w0) == (height, width):
        return frame
    fx, fy, cx, cy = camera_intrinsics(frame)
    if height <= h0 <= 1.05 * height and width <= w0 <= 1.05 * width:
        # barely larger (e.g. the size was cropped to the scale): crop only, no resampling
        x0, y0 = (w0 - width) // 2, (h0 - height) // 2
        window = (slice(y0, y0 + height), slice(x0, x0 + width))
        return _with_pixels(frame, frame.rgb[window].copy(), frame.depth[window].copy(),
                            frame.valid[window].copy(), (fx, fy, cx - x0, cy - y0))
    s = max(width / w0, height / h0)
    sw, sh = max(width, round(w0 * s)), max(height, round(h0 * s))
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    box = (x0, y0, x0 + width, y0 + height)
    rgb = PILImage.fromarray(frame.rgb).resize((sw, sh), PILImage.BILINEAR, reducing_gap=2.0)

    def nearest(plane: np.ndarray) -> np.ndarray:
        image = PILImage.fromarray(plane.astype(np.float32)).resize((sw, sh), PILImage.NEAREST)
        return np.asarray(image.crop(box), dtype=np.float32)

    sx, sy = sw / w0, sh / h0
    # pixel centres: u' = (u + 0.5) * sx - 0.5 - x0
    k = (fx * sx, fy * sy, (cx + 0.5) * sx - 0.5 - x0, (cy + 0.5) * sy - 0.5 - y0)
    return _with_pixels(frame, np.asarray(rgb.crop(box), dtype=np.uint8), nearest(frame.depth),
                        nearest(frame.valid) > 0.5, k)


def procedural_frames(n: int, height: int, width: int, *, seed: int = 0,
                      segment_frames: int = 20, pan: float = 0.5) -> Iterator[RGBDFrame]:
    """`n` frames of procedural rooms; the camera pans across each room for `segment_frames`.

    Args:
        n: number of frames.
        height, width: frame size (px).
        seed: seed of the first room; room k is generate_scene(BAG_SEED0 + seed + k), never a training scene.
        segment_frames: frames per room.
        pan: the room is rendered (1 + pan) x wider than a frame; the window slides across it.
    """
    from naima_ros.data.synthetic import BAG_SEED0, generate_scene

    extra = int(round(width * pan))
    for start in range(0, n, segment_frames):
        room = start // segment_frames
        scene = generate_scene(BAG_SEED0 + seed + room, height, width + extra)
        fx, fy, cx, cy = scene.intrinsics
        count = min(segment_frames, n - start)
        for i in range(count):
            x0 = int(round(extra * i / max(segment_frames - 1, 1)))
            yield frame_from_metres(f"procedural_s{seed + room}_f{i:02d}",
                                    scene.rgb[:, x0:x0 + width].copy(),
                                    scene.depth_m[:, x0:x0 + width], (fx, fy, cx - x0, cy))


def _dataset_frames(name: str, root, limit: int | None, path: str | None) -> Iterator[RGBDFrame]:
    """Frames of a dataset: the shared copy, or the full dataset at `path` (test split). A dataset
    of one image (a still scene: motorcycle) is repeated for NAME:COUNT and named as the source."""
    info = DATASETS[name]
    with_path = [n for n, d in DATASETS.items() if "test" in d.splits and d.path_help is not None]
    if path is not None and name not in with_path:
        raise BagError(f"source {name}@PATH: a path is accepted for {', '.join(with_path)} only")
    if path is None and info.needs_path:
        raise BagError(f"source {name} needs the dataset's folder: {name}@PATH")
    frames, _ = open_dataset(name, "test" if "test" in info.splits else "train", path, root)
    if len(frames) == 1:
        yield from [dataclasses.replace(frames[0], name=name)] * (limit or 1)
        return
    for i in range(len(frames) if limit is None else min(limit, len(frames))):
        yield dataclasses.replace(frames[i], name=f"{name}/{frames[i].name}")


def frames_from_source(spec: str, *, height: int | None, width: int | None, frames: int,
                       seed: int, shared_data=None) -> Iterator[RGBDFrame]:
    """Frames of one `--source` spec: NAME[:COUNT][@PATH] (NAME in `SOURCES`).

    Without PATH a dataset is read from the shared data folder (`shared_data`); with PATH from
    the full dataset there (its test split): `nyu@nyu_depth_v2_labeled.mat`, `tofdsr@DIR`, ...

    Raises:
        BagError: unknown source, count or path.
    """
    spec, _, path = spec.partition("@")
    name, _, count = spec.partition(":")
    name = canonical_name(name)
    if name not in SOURCES:
        raise BagError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)} "
                       f"(optionally NAME:COUNT)")
    try:
        limit = int(count) if count else None
    except ValueError as exc:
        raise BagError(f"source {spec!r}: COUNT must be an integer") from exc
    if name == PROCEDURAL:
        return procedural_frames(limit or frames, height or 240, width or 320, seed=seed)
    return _dataset_frames(name, shared_data, limit, path or None)


# ---------------------------------------------------------------------- LR depth
def lr_from_gt(depth_m: np.ndarray, rgb: np.ndarray, config: LRConfig,
               rng: np.random.Generator) -> np.ndarray:
    """The sensor's LR depth (h, w) float32 metres, NaN invalid, from the HR ground truth.

    Blob and edge holes and the range limit are drawn at the full resolution (their sizes and
    edge widths are tuned there), then each LR pixel averages the valid depth of its footprint
    and is invalid if less than half of it is valid. Dark-surface holes and noise are per LR
    pixel: a ToF pixel's signal is its whole footprint's.
    """
    from naima_ros.data.synthetic import DegradationConfig, degrade_depth

    s = config.scale
    if config.tof_model:
        from naima_ros.data.tof import simulate_tof

        h, w = depth_m.shape[0] // s, depth_m.shape[1] // s
        crop = (slice(0, h * s), slice(0, w * s))
        valid = np.isfinite(depth_m[crop]) & (depth_m[crop] > 0)
        return simulate_tof(np.where(valid, depth_m[crop], 0.0), valid, rgb[crop], (h, w), rng)[0]
    h, w = depth_m.shape[0] // s, depth_m.shape[1] // s
    depth_m = depth_m[:h * s, :w * s]
    valid = np.isfinite(depth_m) & (depth_m > 0)
    if config.tof_holes:
        filled = np.where(valid, depth_m, 0.0)
        _, kept = degrade_depth(filled, rgb[:h * s, :w * s], rng, DegradationConfig(
            noise_m=0.0, noise_floor_m=0.0, quantisation_m=0.0, dark_hole_prob=0.0))
        valid &= kept
    blocks = np.where(valid, depth_m, 0.0).reshape(h, s, w, s)
    n = valid.reshape(h, s, w, s).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = blocks.sum(axis=(1, 3)) / n
    lr_valid = n >= (s * s) / 2
    if config.tof_holes or config.tof_noise:
        rgb_lr = rgb[:h * s, :w * s].reshape(h, s, w, s, 3).mean(axis=(1, 3))
        noise = {} if config.tof_noise else {"noise_m": 0.0, "noise_floor_m": 0.0}
        dark = {} if config.tof_holes else {"dark_hole_prob": 0.0}
        lr, kept = degrade_depth(np.where(lr_valid, lr, 0.0), rgb_lr, rng, DegradationConfig(
            quantisation_m=0.0, blob_holes=0.0, edge_hole_prob=0.0, max_range_m=np.inf,
            **noise, **dark))
        lr_valid &= kept
    return np.where(lr_valid, lr, np.nan).astype(np.float32)


# ---------------------------------------------------------------------- the bag
def _camera_info(hdr, intrinsics, width: int, height: int):
    fx, fy, cx, cy = intrinsics
    t = TYPESTORE.types
    return t["sensor_msgs/msg/CameraInfo"](
        header=hdr, height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64),
        r=np.eye(3).reshape(-1), p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0],
                                            dtype=np.float64),
        binning_x=0, binning_y=0,
        roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


@dataclass
class MakeSummary:
    frames: int = 0
    rgb: int = 0
    depth: int = 0
    dropped_rgb: int = 0
    dropped_depth: int = 0
    size: tuple[int, int] = (0, 0)
    duration_s: float = 0.0


def make_bag(output: str | Path, sources: list[list[RGBDFrame]] | list, *, lr: LRConfig = LRConfig(),
             timing: TimingConfig = TimingConfig(), size: tuple[int, int] | None = None,
             topics: Topics = Topics(), storage: str = "mcap", overwrite: bool = False,
             seed: int = 0, progress: bool = True) -> MakeSummary:
    """Write the frames of every source, in order, as a sensor recording.

    Args:
        output: the bag folder to create.
        sources: one iterable of `RGBDFrame` per source.
        lr: the LR depth sensor.
        timing: stamps, jitter and drops.
        size: (width, height) of every frame; default the first frame's, cropped to a multiple of
            the scale. Other frames are scaled and centre-cropped to it (`fit_frame`).
        topics: topic names.
        storage: "mcap" or "sqlite3".
        overwrite: replace an existing bag at `output`.
        seed: seed of the timing and degradation randomness.
        progress: show a progress bar.

    Returns:
        A `MakeSummary`.
    """
    from tqdm import tqdm

    if lr.encoding not in ("16UC1", "32FC1"):
        raise BagError(f"LR depth encoding must be 16UC1 or 32FC1, got {lr.encoding!r}")
    rng = np.random.default_rng(seed)
    period_ns = 1e9 / timing.rate_hz
    summary = MakeSummary()
    names: dict[str, str] = {}
    t_nominal = float(timing.start_ns)
    last_stamp = {"rgb": 0, "depth": 0}
    s = lr.scale
    bar = tqdm(desc=f"make {Path(output).name}", unit="frame", disable=not progress)
    with BagWriter(output, storage, overwrite=overwrite) as writer:
        try:
            for k, frames in enumerate(sources):
                if k:
                    t_nominal += timing.gap_s * 1e9
                for frame in frames:
                    if size is None:
                        h0, w0 = frame.depth.shape
                        size = (w0 - w0 % s, h0 - h0 % s)
                    frame = fit_frame(frame, *size)
                    width, height = size
                    if width % s or height % s:
                        raise BagError(f"frame size {width}x{height} is not a multiple of the "
                                       f"scale {s}")
                    jitter = float(np.clip(rng.normal(0, timing.jitter_ms), -3 * timing.jitter_ms,
                                           3 * timing.jitter_ms)) * 1e6
                    t_rgb = int(t_nominal + jitter)
                    t_depth = t_rgb + int(rng.uniform(-1, 1) * timing.rgb_depth_offset_ms * 1e6)
                    # stamps of one stream strictly increase whatever the jitter
                    t_rgb = max(t_rgb, last_stamp["rgb"] + 1)
                    t_depth = max(t_depth, last_stamp["depth"] + 1)
                    last_stamp.update(rgb=t_rgb, depth=t_depth)
                    t_nominal += period_ns
                    drop = rng.random() < timing.drop_rate
                    lost = rng.choice(["rgb", "depth", "both", "both"]) if drop else ""

                    def delay() -> int:
                        return int(rng.uniform(*timing.transport_ms) * 1e6)

                    depth_m = frame.depth_m  # (H, W) ground truth, NaN where unknown
                    if lr.real and frame.depth_lr is not None:
                        depth_lr = frame.depth_lr * np.float32(frame.metres_per_unit)
                    else:
                        depth_lr = lr_from_gt(depth_m, frame.rgb, lr, rng)
                    out = [(t_depth + delay(), topics.gt,
                            depth_msg(header(t_depth, FRAME_ID), depth_m, lr.encoding))]
                    if lost not in ("rgb", "both"):
                        hdr = header(t_rgb, FRAME_ID)
                        t_log = t_rgb + delay()
                        out += [(t_log, topics.rgb_info, _camera_info(hdr, camera_intrinsics(frame),
                                                                       width, height)),
                                (t_log + 1, topics.rgb, rgb_msg(hdr, frame.rgb))]
                        summary.rgb += 1
                    else:
                        summary.dropped_rgb += 1
                    if lost not in ("depth", "both"):
                        out.append((t_depth + delay(), topics.depth,
                                    depth_msg(header(t_depth, FRAME_ID), depth_lr, lr.encoding)))
                        summary.depth += 1
                    else:
                        summary.dropped_depth += 1
                    for t_log, topic, msg in sorted(out, key=lambda item: item[0]):
                        writer.write(topic, msg, t_log)
                    names[str(t_depth)] = frame.name
                    summary.frames += 1
                    summary.duration_s = (t_depth - timing.start_ns) / 1e9
                    bar.update()
        finally:
            bar.close()
            summary.size = size or (0, 0)
            writer.set_custom_data(CUSTOM_FRAMES_KEY, json.dumps(names))
            writer.set_custom_data("naima.make", json.dumps(
                {"scale": s, "encoding": lr.encoding, "tof_holes": lr.tof_holes,
                 "tof_noise": lr.tof_noise, "rate_hz": timing.rate_hz,
                 "drop_rate": timing.drop_rate, "seed": seed}))
    if summary.frames == 0:
        raise BagError(f"no frames were written to {output}: the sources were empty")
    return summary
