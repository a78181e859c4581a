"""Procedural RGB-D scenes for CPU training and tests, deterministic from a seed.

A pinhole camera at the origin looks down +z (x right, y down) into a tilted box room (floor,
ceiling, walls) holding slanted rectangular panels, oriented boxes, spheres and thin cylinders
(poles, rods) that occlude each other. Rays are cast for every pixel with the direction
((u - cx) / f, (v - cy) / f, 1), so the ray parameter of the nearest hit *is* the z-depth in metres.

Colour deliberately does not follow depth: every surface is textured with a photo shipped with
scikit-image, mapped in the surface's 3-D coordinates (texture edges inside surfaces, with no
depth edge), neighbouring objects sometimes share the background's texture mapping (depth edges
with no colour edge), and screen-space "decals" of other photos paint colour edges across depth
edges. Lambertian shading adds the weak geometric cue real images have.

Optional ToF-like degradations (``degrade_depth``): distance-dependent Gaussian noise,
quantisation, holes (random blobs, depth discontinuities, dark surfaces, beyond max range).
A 384x512 scene takes ~0.1-0.3 s on one core.

``BENCHMARK_STYLE`` makes scenes closer to the benchmarks (Middlebury, Lu): most object boundaries
carry a colour edge (each object's texture is pulled towards its own flat colour, background
texture rarely reused, at most one decal). ``ProceduralScenes`` is a lazy, cached sequence of such
frames for training, part of them with inverse-depth targets (disparity-like, as Middlebury's GT).
``degrade_lr_depth`` applies a realistic ToF degradation to a network input (LR, normalised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from naima_ros.data.common import RGBDFrame

__all__ = ["BAG_SEED0", "BENCHMARK_STYLE", "TEXTURE_NAMES", "VALIDATION_SEED0", "DegradationConfig",
           "ProceduralScenes", "SceneStyle", "SyntheticScene", "ToFConfig", "degrade_depth", "degrade_lr_depth",
           "generate_scene", "load_textures"]

TEXTURE_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "camera", "coins",
                 "immunohistochemistry", "colorwheel", "moon", "page", "text", "hubble_deep_field")
_FAR = np.inf
# Scene seeds by use. Training sets draw generate_scene(0 .. count-1); validation and the procedural bags
# (naima-bag make, the demo) start far above, so no model is scored on a room it was trained on.
VALIDATION_SEED0 = 10_000_000
BAG_SEED0 = 20_000_000


@lru_cache(maxsize=1)
def load_textures() -> tuple[np.ndarray, ...]:
    """The scikit-image sample photos as (H, W, 3) float32 textures in [0, 1] (grey -> RGB)."""
    from skimage import data

    textures = []
    for name in TEXTURE_NAMES:
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        textures.append(np.ascontiguousarray(image[:, :, :3], dtype=np.float32) / 255.0)
    return tuple(textures)


@dataclass(frozen=True)
class DegradationConfig:
    """ToF-like degradations of a clean depth map (all in metres).

    Attributes:
        noise_m: Gaussian noise sigma at 1 m; grows with z^2 (ToF/structured light).
        noise_floor_m: Distance-independent noise sigma.
        quantisation_m: Depth step (0.001 = a 16UC1 millimetre image; 0 = none).
        blob_holes: Expected fraction of pixels lost in random blobs.
        edge_hole_prob: Drop probability of pixels at depth discontinuities.
        edge_threshold_m: Neighbour depth jump that counts as a discontinuity.
        dark_threshold: Grey level in [0, 1] under which surfaces may return no signal.
        dark_hole_prob: Drop probability of those dark pixels.
        max_range_m: Beyond this depth nothing is returned.
    """

    noise_m: float = 0.004
    noise_floor_m: float = 0.002
    quantisation_m: float = 0.001
    blob_holes: float = 0.02
    edge_hole_prob: float = 0.5
    edge_threshold_m: float = 0.1
    dark_threshold: float = 0.08
    dark_hole_prob: float = 0.5
    max_range_m: float = 8.0


@dataclass(frozen=True)
class SceneStyle:
    """How colour relates to depth edges in a scene (the defaults are the decorrelated original).

    Attributes:
        background_texture_prob: Chance that an object continues the background's texture (a depth
            edge without a colour edge).
        max_decals: Up to this many screen-space decals (colour edges across depth edges).
        flat_colour_mix: Each object's texture is blended by this weight with a flat colour of its own,
            so its outline carries a colour edge (0: pure texture).
    """

    background_texture_prob: float = 0.2
    max_decals: int = 3
    flat_colour_mix: float = 0.0


BENCHMARK_STYLE = SceneStyle(background_texture_prob=0.05, max_decals=1, flat_colour_mix=0.45)


@dataclass(frozen=True)
class SyntheticScene:
    """A rendered scene.

    Attributes:
        rgb: (H, W, 3) uint8 colour.
        depth_m: (H, W) float32 clean z-depth in metres (finite everywhere).
        intrinsics: (fx, fy, cx, cy) in pixels.
        depth_measured_m: (H, W) float32 degraded depth, 0 in holes, or None.
        measured_valid: (H, W) bool, False in holes of the degraded depth, or None.
        seed: The integer seed it was made from (None if a Generator was passed).
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    intrinsics: tuple[float, float, float, float]
    depth_measured_m: np.ndarray | None = None
    measured_valid: np.ndarray | None = None
    seed: int | None = field(default=None)

    def to_frame(self, name: str | None = None, inverse_depth: bool = False) -> RGBDFrame:
        """The clean scene as a metric frame (per-image min-max, RMSE in cm).

        Args:
            inverse_depth: the frame holds 1/z in 1/m instead (disparity-like, as Middlebury's GT);
                RMSE is then reported in 1/m × 100.
        """
        depth = self.depth_m.astype(np.float32)
        unit = "m"
        if inverse_depth:
            depth, unit = (1.0 / depth).astype(np.float32), "1/m"
        return RGBDFrame(name=name or f"synthetic_{self.seed}", rgb=self.rgb, depth=depth,
                         valid=np.ones(depth.shape, dtype=bool),
                         minmax=(float(depth.min()), float(depth.max())), unit=unit, rmse_scale=100.0,
                         rmse_unit="cm" if unit == "m" else "1/m x100", intrinsics=self.intrinsics,
                         metres_per_unit=1.0 if unit == "m" else None)


def _rotation(rng: np.random.Generator, max_angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Random rotation R = Rz(roll) Ry(yaw) Rx(pitch) with each angle uniform in +-max."""
    pitch, yaw, roll = (np.deg2rad(rng.uniform(-a, a)) for a in max_angles_deg)
    cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _dot(vectors: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, n) . (3,) -> (n,)."""
    return vectors[0] * v[0] + vectors[1] * v[1] + vectors[2] * v[2]


class _Primitive:
    """A surface: ``intersect(rays)`` -> t (n,) with inf where missed; ``normal(points)`` -> (3, n).

    Rays (3, n) come from the origin with direction (x, y, 1), so t is the z-depth; points are
    (3, n) too (rows x, y, z: each row contiguous, which keeps numpy fast). ``bound`` is a bounding
    sphere (centre, radius) used to cast only the rays of its screen-space box, or None.
    """

    bound: tuple[np.ndarray, float] | None = None

    def intersect(self, rays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def normal(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _axis_normal(local: np.ndarray, rotation: np.ndarray, sign: float) -> np.ndarray:
    """Face normal of an oriented box at box-frame points scaled to [-1, 1] (3, n)."""
    axis = np.argmax(np.abs(local), axis=0)
    normal = np.zeros_like(local)
    for k in range(3):
        normal[k] = np.where(axis == k, sign * np.sign(local[k]), 0.0)
    return rotation @ normal


class _Room(_Primitive):
    """The inside of an oriented box around the camera: walls, floor and ceiling (exit point)."""

    def __init__(self, rotation: np.ndarray, half: np.ndarray, centre: np.ndarray):
        self.rotation, self.half, self.centre = rotation, half, centre

    def intersect(self, rays):
        d = self.rotation.T @ rays  # box frame
        o = -(self.rotation.T @ self.centre)
        t = np.full(rays.shape[1], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):
                t_k = np.where(d[k] > 0, (self.half[k] - o[k]) / d[k], (-self.half[k] - o[k]) / d[k])
                t = np.minimum(t, np.where(d[k] != 0, t_k, np.inf))
        return t

    def normal(self, points):
        local = (self.rotation.T @ (points - self.centre[:, None])) / self.half[:, None]
        return _axis_normal(local, self.rotation, -1.0)


class _Box(_Primitive):
    """An oriented box seen from outside (slab method)."""

    def __init__(self, rotation: np.ndarray, half: np.ndarray, centre: np.ndarray):
        self.rotation, self.half, self.centre = rotation, half, centre
        self.bound = (centre, float(np.linalg.norm(half)))

    def intersect(self, rays):
        d = self.rotation.T @ rays
        o = -(self.rotation.T @ self.centre)
        t_enter = np.full(rays.shape[1], -np.inf)
        t_exit = np.full(rays.shape[1], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):
                t1 = (-self.half[k] - o[k]) / d[k]
                t2 = (self.half[k] - o[k]) / d[k]
                t_enter = np.fmax(t_enter, np.minimum(t1, t2))  # fmax/fmin ignore the NaN of 0/0
                t_exit = np.fmin(t_exit, np.maximum(t1, t2))
        return np.where((t_enter <= t_exit) & (t_enter > 1e-3), t_enter, _FAR)

    def normal(self, points):
        local = (self.rotation.T @ (points - self.centre[:, None])) / self.half[:, None]
        return _axis_normal(local, self.rotation, 1.0)


class _Rectangle(_Primitive):
    """A slanted planar panel: centre, in-plane unit axes u, v and half extents."""

    def __init__(self, centre: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, half_u: float, half_v: float):
        self.centre, self.axis_u, self.axis_v, self.half_u, self.half_v = centre, axis_u, axis_v, half_u, half_v
        self.plane_normal = np.cross(axis_u, axis_v)
        self.bound = (centre, float(np.hypot(half_u, half_v)))

    def intersect(self, rays):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.centre @ self.plane_normal) / _dot(rays, self.plane_normal)
        points = rays * t - self.centre[:, None]
        inside = (np.abs(_dot(points, self.axis_u)) <= self.half_u) & (np.abs(_dot(points, self.axis_v)) <= self.half_v)
        return np.where(inside & (t > 1e-3), t, _FAR)

    def normal(self, points):
        # Face the camera (the origin).
        sign = -np.sign(_dot(points, self.plane_normal))
        return self.plane_normal[:, None] * sign


class _Sphere(_Primitive):
    def __init__(self, centre: np.ndarray, radius: float):
        self.centre, self.radius = centre, radius
        self.bound = (centre, radius)

    def intersect(self, rays):
        a = _dot(rays, rays)
        b = _dot(rays, self.centre)
        disc = b * b - a * (self.centre @ self.centre - self.radius**2)
        t = (b - np.sqrt(np.maximum(disc, 0.0))) / a
        return np.where((disc >= 0) & (t > 1e-3), t, _FAR)

    def normal(self, points):
        return (points - self.centre[:, None]) / self.radius


class _Cylinder(_Primitive):
    """An open finite cylinder: thin rods and poles (caps are too small to matter)."""

    def __init__(self, base: np.ndarray, axis: np.ndarray, length: float, radius: float):
        self.base, self.axis, self.length, self.radius = base, axis, length, radius
        self.bound = (base + axis * length / 2, length / 2 + radius)

    def intersect(self, rays):
        w = -self.base
        along_d = _dot(rays, self.axis)
        d_perp = rays - self.axis[:, None] * along_d
        w_perp = w - (w @ self.axis) * self.axis
        a = _dot(d_perp, d_perp)
        b = _dot(d_perp, w_perp)
        disc = b * b - a * (w_perp @ w_perp - self.radius**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        along = w @ self.axis + t * along_d
        return np.where((disc >= 0) & (a > 0) & (t > 1e-3) & (along >= 0) & (along <= self.length), t, _FAR)

    def normal(self, points):
        local = points - self.base[:, None]
        normal = local - self.axis[:, None] * _dot(local, self.axis)
        return normal / np.maximum(np.sqrt(_dot(normal, normal)), 1e-9)


def _screen_window(bound, focal: float, cx: float, cy: float, height: int, width: int):
    """Conservative pixel window (v0, v1, u0, u1) covering a bounding sphere, or the whole image."""
    if bound is None or bound[0][2] - bound[1] < 0.05:
        return 0, height, 0, width
    (x, y, z), radius = bound
    near, far = z - radius, z + radius

    def extent(c: float, centre_px: float, size: int) -> tuple[int, int]:
        lo = (c - radius) / (near if c - radius < 0 else far)
        hi = (c + radius) / (near if c + radius > 0 else far)
        return (int(np.clip(np.floor(lo * focal + centre_px), 0, size)),
                int(np.clip(np.ceil(hi * focal + centre_px) + 1, 0, size)))

    v0, v1 = extent(y, cy, height)
    u0, u1 = extent(x, cx, width)
    return v0, v1, u0, u1


def _texture_mapping(rng: np.random.Generator, n_textures: int) -> dict:
    """A random planar texture projection: uv = (X . a, X . b) * px_per_m + offset."""
    a = _random_unit(rng)
    b = np.cross(a, _random_unit(rng))
    b /= np.linalg.norm(b)
    return {"texture": int(rng.integers(n_textures)), "a": a, "b": b, "scale": rng.uniform(150.0, 600.0),
            "offset": rng.uniform(0, 4096, size=2), "tint": rng.uniform(0.6, 1.2, size=3)}


def _sample_texture(texture: np.ndarray, points: np.ndarray, mapping: dict) -> np.ndarray:
    u = _dot(points, mapping["a"]) * mapping["scale"] + mapping["offset"][0]
    v = _dot(points, mapping["b"]) * mapping["scale"] + mapping["offset"][1]
    th, tw = texture.shape[:2]
    # Mirrored tiling: continuous across tile borders.
    ui = np.abs(np.mod(np.floor(u).astype(np.int64), 2 * tw) - tw + 0.5).astype(np.int64).clip(0, tw - 1)
    vi = np.abs(np.mod(np.floor(v).astype(np.int64), 2 * th) - th + 0.5).astype(np.int64).clip(0, th - 1)
    return texture[vi, ui] * mapping["tint"]


def generate_scene(seed: int | np.random.Generator, height: int = 384, width: int = 512, *,
                   num_objects: tuple[int, int] = (4, 12),
                   degradation: DegradationConfig | None = None,
                   style: SceneStyle = SceneStyle()) -> SyntheticScene:
    """Render one procedural RGB-D scene.

    Args:
        seed: Integer seed or a numpy Generator (all randomness comes from it).
        height: Image height in pixels.
        width: Image width in pixels.
        num_objects: Inclusive range of the number of objects in the room.
        degradation: If given, also produce ``depth_measured_m`` / ``measured_valid`` with these
            ToF-like degradations (drawn from the same generator, after the scene).
        style: How colour follows depth edges (``BENCHMARK_STYLE``: mostly; the default: deliberately not).

    Returns:
        SyntheticScene with depth roughly in [0.5, 10] m.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    textures = load_textures()
    focal = width / (2.0 * np.tan(np.deg2rad(rng.uniform(50.0, 70.0)) / 2.0))
    cx, cy = (width - 1) / 2.0 + rng.uniform(-5, 5), (height - 1) / 2.0 + rng.uniform(-5, 5)
    us, vs = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([(us - cx) / focal, (vs - cy) / focal, np.ones_like(us)])  # (3, H, W)

    # The room: a tilted box around the camera.
    room_rotation = _rotation(rng, (12.0, 25.0, 8.0))
    half = np.array([rng.uniform(1.5, 4.0), rng.uniform(1.2, 1.8), rng.uniform(2.0, 4.5)])
    room_centre = room_rotation @ np.array([rng.uniform(-0.5, 0.5) * half[0], rng.uniform(-0.3, 0.3),
                                            half[2] - rng.uniform(0.3, 1.0)])
    room = _Room(room_rotation, half, room_centre)
    depth = room.intersect(rays.reshape(3, -1)).reshape(height, width)
    winner = np.zeros((height, width), dtype=np.int64)
    primitives: list[_Primitive] = [room]
    background = _texture_mapping(rng, len(textures))
    mappings = [background]
    far_z = float(np.median(depth))

    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for k in range(1, count + 1):
        # A point in the view frustum between 0.7 m and the wall.
        z = rng.uniform(0.7, max(1.0, 0.9 * far_z))
        centre = np.array([rng.uniform(-0.45, 0.45) * width / focal * z,
                           rng.uniform(-0.4, 0.45) * height / focal * z, z])
        kind = rng.choice(["panel", "box", "sphere", "rod"], p=[0.3, 0.3, 0.2, 0.2])
        size = rng.uniform(0.1, 0.35) * z
        if kind == "panel":
            rotation = _rotation(rng, (70.0, 70.0, 45.0))
            primitive = _Rectangle(centre, rotation[:, 0], rotation[:, 1], size * rng.uniform(0.5, 1.5),
                                   size * rng.uniform(0.5, 1.5))
        elif kind == "box":
            primitive = _Box(_rotation(rng, (30.0, 60.0, 20.0)), size * rng.uniform(0.3, 1.0, size=3), centre)
        elif kind == "sphere":
            primitive = _Sphere(centre, size * rng.uniform(0.3, 0.7))
        else:
            axis = _rotation(rng, (20.0, 20.0, 40.0))[:, 1] if rng.random() < 0.7 else _random_unit(rng)
            length = size * rng.uniform(2.0, 6.0)
            primitive = _Cylinder(centre - axis * length / 2, axis, length, rng.uniform(0.005, 0.03))
        primitives.append(primitive)
        # Sometimes the object continues the background's texture: a depth edge with no colour edge.
        mappings.append(background if rng.random() < style.background_texture_prob
                        else _texture_mapping(rng, len(textures)))
        # z-buffer, casting only the rays of the object's screen-space window.
        v0, v1, u0, u1 = _screen_window(primitive.bound, focal, cx, cy, height, width)
        if v1 <= v0 or u1 <= u0:
            continue
        window = rays[:, v0:v1, u0:u1].reshape(3, -1)
        t = primitive.intersect(window).reshape(v1 - v0, u1 - u0)
        closer = t < depth[v0:v1, u0:u1]
        depth[v0:v1, u0:u1][closer] = t[closer]
        winner[v0:v1, u0:u1][closer] = k

    light = _random_unit(rng)
    light[2] = -abs(light[2])  # towards the camera side
    ambient, diffuse = rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.8)
    colour = np.zeros((height, width, 3))
    points = rays * depth
    for k, (primitive, mapping) in enumerate(zip(primitives, mappings)):
        sel = winner == k
        if sel.any():
            selected = points[:, sel]  # (3, n)
            shading = ambient + diffuse * np.clip(-_dot(primitive.normal(selected), light), 0.0, 1.0)
            texel = _sample_texture(textures[mapping["texture"]], selected, mapping)
            if style.flat_colour_mix > 0:  # the object's own colour: its outline becomes a colour edge
                flat = rng.uniform(0.05, 1.0, size=3)
                texel = (1.0 - style.flat_colour_mix) * texel + style.flat_colour_mix * flat
            colour[sel] = texel * shading[:, None]

    # Screen-space decals: colour edges that cross depth edges.
    for _ in range(int(rng.integers(0, style.max_decals + 1))):
        ey, ex = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        inside = ((vs - ey) / ry) ** 2 + ((us - ex) / rx) ** 2 <= 1.0
        texture = textures[int(rng.integers(len(textures)))]
        ty = (vs[inside].astype(np.int64) + int(rng.integers(1000))) % texture.shape[0]
        tx = (us[inside].astype(np.int64) + int(rng.integers(1000))) % texture.shape[1]
        colour[inside] = 0.5 * colour[inside] + 0.5 * texture[ty, tx]

    rgb = np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8)
    depth_m = depth.astype(np.float32)
    measured = valid = None
    if degradation is not None:
        measured, valid = degrade_depth(depth_m, rgb, rng, degradation)
    return SyntheticScene(rgb=rgb, depth_m=depth_m, intrinsics=(focal, focal, cx, cy), depth_measured_m=measured,
                          measured_valid=valid, seed=None if isinstance(seed, np.random.Generator) else int(seed))


def degrade_depth(depth_m: np.ndarray, rgb: np.ndarray, rng: np.random.Generator,
                  config: DegradationConfig = DegradationConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Apply ToF-like degradations to a clean depth map.

    Args:
        depth_m: (H, W) clean depth in metres.
        rgb: (H, W, 3) uint8 colour (dark surfaces lose signal).
        rng: Generator for every random draw.
        config: Degradation strengths.

    Returns:
        (depth float32 metres with 0 in holes, valid bool).
    """
    from scipy import ndimage

    depth = np.asarray(depth_m, dtype=np.float64)
    sigma = config.noise_floor_m + config.noise_m * depth**2
    noisy = depth + rng.normal(size=depth.shape) * sigma
    if config.quantisation_m > 0:
        noisy = np.round(noisy / config.quantisation_m) * config.quantisation_m
    valid = (depth <= config.max_range_m) & (noisy > 0)
    if config.blob_holes > 0:
        field_ = ndimage.gaussian_filter(rng.normal(size=depth.shape), sigma=max(depth.shape) / 60.0)
        valid &= field_ < np.quantile(field_, 1.0 - config.blob_holes)
    if config.edge_hole_prob > 0:
        jump = np.maximum(np.abs(np.diff(depth, axis=0, prepend=depth[:1])),
                          np.abs(np.diff(depth, axis=1, prepend=depth[:, :1])))
        edges = ndimage.binary_dilation(jump > config.edge_threshold_m)
        valid &= ~(edges & (rng.random(depth.shape) < config.edge_hole_prob))
    if config.dark_hole_prob > 0:
        grey = rgb.astype(np.float64).mean(axis=2) / 255.0
        valid &= ~((grey < config.dark_threshold) & (rng.random(depth.shape) < config.dark_hole_prob))
    return np.where(valid, noisy, 0.0).astype(np.float32), valid


class ProceduralScenes(Sequence):
    """``count`` procedural training frames, rendered on first access and cached.

    Frame ``j`` is ``generate_scene(seed + j, *size, style=style)``; with probability
    ``inverse_depth_prob`` (drawn from (seed + j) alone) it holds inverse depth. Usable wherever a
    list of real frames is (e.g. ``TrainDataset(frames=...)``).
    """

    def __init__(self, count: int, size: tuple[int, int] = (384, 512), seed: int = 0,
                 style: SceneStyle = BENCHMARK_STYLE, inverse_depth_prob: float = 0.0):
        self.count, self.size, self.seed, self.style = count, tuple(size), seed, style
        self.inverse_depth_prob = inverse_depth_prob
        self._cache: dict[int, RGBDFrame] = {}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if not -self.count <= index < self.count:
            raise IndexError(f"scene {index} out of range for {self.count} scenes")
        j = index % self.count
        if j not in self._cache:
            seed = self.seed + j
            inverse = np.random.default_rng([seed, 1]).random() < self.inverse_depth_prob
            scene = generate_scene(seed, *self.size, style=self.style)
            self._cache[j] = scene.to_frame(f"procedural_{seed}{'_inv' if inverse else ''}", inverse_depth=inverse)
        return self._cache[j]


@dataclass(frozen=True)
class ToFConfig:
    """A time-of-flight sensor's faults on a network input (normalised LR depth in [0, 1]).

    Attributes:
        noise: Gaussian noise sigma at normalised depth 1; grows with depth squared.
        noise_floor: Depth-independent noise sigma.
        edge_hole_prob: Drop probability of pixels at depth discontinuities (mixed returns rejected).
        edge_threshold: Neighbour jump (normalised) that counts as a discontinuity.
        flying_prob: Probability that a kept edge pixel is a flying pixel (a blend of both sides).
        dark_threshold: Grey level in [0, 1] under which a surface may return no signal.
        dark_hole_prob: Drop probability of those dark pixels.
        blob_holes: Expected fraction of pixels lost in random blobs (specular, out of range).
    """

    noise: float = 0.01
    noise_floor: float = 0.002
    edge_hole_prob: float = 0.5
    edge_threshold: float = 0.04
    flying_prob: float = 0.5
    dark_threshold: float = 0.12
    dark_hole_prob: float = 0.6
    blob_holes: float = 0.02


def degrade_lr_depth(depth_lr: np.ndarray, grey_lr: np.ndarray, rng: np.random.Generator,
                     config: ToFConfig = ToFConfig()) -> tuple[np.ndarray, np.ndarray]:
    """ToF faults on a normalised LR depth map; holes are then filled as the predictor fills them.

    Args:
        depth_lr: (h, w) normalised depth (clean, e.g. the bicubic LR of the target).
        grey_lr: (h, w) grey level in [0, 1] of the scene at the LR grid (dark surfaces lose signal).
        rng: Generator for every draw.
        config: Fault strengths.

    Returns:
        (degraded depth float32 with holes filled by the nearest valid pixel, valid bool before filling).
    """
    from scipy import ndimage

    from naima_ros.frames import fill_invalid_nearest

    depth = np.asarray(depth_lr, dtype=np.float64)
    h, w = depth.shape
    out = depth + rng.normal(size=depth.shape) * (config.noise_floor + config.noise * depth**2)
    jump = np.maximum(np.abs(np.diff(depth, axis=0, prepend=depth[:1])),
                      np.abs(np.diff(depth, axis=1, prepend=depth[:, :1])))
    edges = ndimage.binary_dilation(jump > config.edge_threshold)
    # Flying pixels: a blend of the nearest and farthest neighbours' depths.
    near, far = ndimage.minimum_filter(depth, size=3), ndimage.maximum_filter(depth, size=3)
    flying = edges & (rng.random(depth.shape) < config.flying_prob)
    t = rng.random(depth.shape)
    out = np.where(flying, t * near + (1.0 - t) * far, out)
    valid = ~(edges & ~flying & (rng.random(depth.shape) < config.edge_hole_prob))
    valid &= ~((np.asarray(grey_lr) < config.dark_threshold) & (rng.random(depth.shape) < config.dark_hole_prob))
    if config.blob_holes > 0:
        field_ = ndimage.gaussian_filter(rng.normal(size=depth.shape), sigma=max(h, w) / 30.0)
        valid &= field_ < np.quantile(field_, 1.0 - config.blob_holes)
    if not valid.any():  # nothing left to fill from: keep the noisy map
        return out.astype(np.float32), valid
    return fill_invalid_nearest(out.astype(np.float32), valid), valid
