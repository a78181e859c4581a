"""Self-describing NAIMA checkpoints: safetensors weights + JSON metadata, never pickled.

One file holds everything inference needs. The safetensors header's ``__metadata__`` carries a
``naima`` JSON document:

    {"format": "naima_ros.checkpoint", "version": 1, "preset": "light", "scale": 8,
     "config": {...NaimaConfig...}, "overrides": {...}, "backbone": {"identity": ..., "seed": 0 | null},
     "semantic_encoder": {"name": ..., "pretrained": ..., "identity": ..., "seed": ...,
                          "rgb_normalisation": {...}},
     "training": {...}, "metrics": {...}, "git": "<sha>", "created": "<UTC ISO time>", ...}

A frozen random backbone (no DINOv2 file available) is not stored: its seed is, and
``naima_ros.model.encoders.seeded_backbone_state`` regenerates it bit for bit. Every other tensor,
including a pretrained backbone and the reference's random position table, is stored. Writes go
to a temporary file first and are moved into place with ``os.replace``, so a kill at any moment
leaves either the old or the new file.

Every check of a checkpoint is here, in one order: the file and its metadata (``read_metadata``),
the scale and preset the caller expects, then every tensor name and shape against the model the
metadata builds (``_model_and_state``). ``check_checkpoint`` runs them without reading a weight
(the model is built on torch's meta device; the node does this before it accepts a new
``checkpoint`` or ``scale``), ``load_checkpoint`` runs the same ones on the real tensors, then loads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import subprocess
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from naima_ros.fsio import atomic_write
from naima_ros.model.encoders import encoder_metadata, use_seeded_backbone
from naima_ros.model.naima import PRESETS, Naima, NaimaConfig, build_model, preset_config

# atomic_write, use_seeded_backbone: re-exported
__all__ = ["CheckpointError", "atomic_write", "check_checkpoint", "load_checkpoint", "read_metadata",
           "save_checkpoint", "state_dict_mismatch", "use_seeded_backbone"]

FORMAT = "naima_ros.checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated or does not fit what was asked for."""


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def save_checkpoint(path: str | Path, model: Naima, *, preset: str, training: dict | None = None,
                    metrics: dict | None = None, extra: dict | None = None) -> dict:
    """Write ``model`` and its description atomically. Returns the metadata written."""
    path = Path(path)
    config: NaimaConfig = model.config
    base = dataclasses.asdict(preset_config(preset, config.scale))
    overrides = {k: v for k, v in config.to_dict().items() if base.get(k) != v}
    seed = getattr(model, "backbone_seed", None)
    meta = {
        "format": FORMAT, "version": VERSION, "preset": preset, "scale": config.scale,
        "config": config.to_dict(), "overrides": overrides,
        "backbone": {"identity": model.backbone_identity, "seed": seed, "stored": seed is None},
        "semantic_encoder": encoder_metadata(model),
        "training": training or {}, "metrics": metrics or {}, "git": git_revision(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        meta.update(extra)
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items() if seed is None or not k.startswith("backbone.")}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"naima": json.dumps(meta)}))
    return meta


def read_metadata(path: str | Path) -> dict:
    """The ``naima`` metadata of a checkpoint, validated. Raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("naima")
    except Exception as exc:  # safetensors raises its own error type for corrupt/truncated headers
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint (corrupt, truncated or a "
                              f"pickle?): {exc}") from exc
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without naima metadata; convert foreign weights with "
                              f"naima-convert")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: naima metadata is not valid JSON: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: metadata format {meta.get('format')!r} v{meta.get('version')!r}, "
                              f"expected {FORMAT!r} v{VERSION}")
    if meta.get("preset") not in PRESETS:
        raise CheckpointError(f"{path}: unknown preset {meta.get('preset')!r} (known: {sorted(PRESETS)})")
    return meta


def state_dict_mismatch(model: torch.nn.Module, state: dict) -> str | None:
    """None if ``state`` loads strictly into ``model``, else what differs (keys first, then shapes)."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        return (f"keys do not match: {len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:3]})")
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        return f"tensor shapes do not match, e.g. {wrong[:3]} (file, model)"
    return None


def _expected_metadata(path: Path, expect_scale: int | None, expect_preset: str | None) -> dict:
    """``read_metadata``, then the scale and preset the caller expects (None: any)."""
    meta = read_metadata(path)
    if expect_scale is not None and meta["scale"] != expect_scale:
        raise CheckpointError(f"{path}: checkpoint is x{meta['scale']}, expected x{expect_scale}")
    if expect_preset is not None and meta["preset"] != expect_preset:
        raise CheckpointError(f"{path}: checkpoint preset is {meta['preset']!r}, expected {expect_preset!r}")
    return meta


def _model_and_state(path: Path, meta: dict, *, weights: bool) -> tuple[Naima, dict]:
    """The model the metadata describes and the file's state dict, checked to load strictly.

    Args:
        weights: read the tensors and build a real model; False: only the header's names and shapes,
            against a model on torch's meta device (no memory, no weight read).
    """
    try:
        with contextlib.nullcontext() if weights else torch.device("meta"):
            model = build_model(meta["preset"], meta["scale"], warn_untrained=False, **meta.get("overrides", {}))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata describes an invalid model: {exc}") from exc
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) if weights else torch.empty(f.get_slice(k).get_shape(), device="meta")
                     for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read tensors (truncated or corrupt?): {exc}") from exc
    seed = meta.get("backbone", {}).get("seed")
    if seed is not None:  # a frozen random backbone is not stored: it is regenerated from its seed
        if weights:
            use_seeded_backbone(model, int(seed))
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("backbone.")})
    problem = state_dict_mismatch(model, state)
    if problem:
        raise CheckpointError(f"{path}: {problem} of a {meta['preset']} x{meta['scale']} model")
    return model, state


def check_checkpoint(path: str | Path, *, expect_scale: int | None = None,
                     expect_preset: str | None = None) -> dict:
    """Every check ``load_checkpoint`` makes, without reading a weight. Returns the metadata.

    Raises:
        CheckpointError: what is wrong (missing, corrupt, not ours, another scale or preset, tensors that
            do not fit the model the metadata describes).
    """
    path = Path(path)
    meta = _expected_metadata(path, expect_scale, expect_preset)
    _model_and_state(path, meta, weights=False)
    return meta


def load_checkpoint(path: str | Path, *, expect_scale: int | None = None, expect_preset: str | None = None,
                    device: str | torch.device = "cpu") -> tuple[Naima, dict]:
    """Build the model a checkpoint describes and load it strictly (after ``check_checkpoint``'s checks).

    Args:
        expect_scale, expect_preset: if given, a checkpoint of another scale/preset is an error.

    Returns:
        (model in eval mode on ``device``, metadata).
    """
    path = Path(path)
    meta = _expected_metadata(path, expect_scale, expect_preset)
    model, state = _model_and_state(path, meta, weights=True)
    seed = meta.get("backbone", {}).get("seed")
    model.load_state_dict(state, strict=True)
    model.backbone_identity = meta.get("backbone", {}).get("identity", "unknown")
    model.backbone_seed = seed
    # Checkpoints written before the encoder was pluggable: pretrained unless the ViT was the seeded random one.
    model.backbone_pretrained = bool(meta.get("semantic_encoder", {}).get("pretrained", seed is None))
    return model.to(device).eval(), meta
