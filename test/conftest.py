"""Shared fixtures: small real checkpoints, the shared data folder."""

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory: ``tiny_checkpoint(scale=8, preset="light", **overrides) -> Path`` of a real saved model.

    The weights are the (seeded) random initialisation: real code paths, meaningless output.
    Cached per argument set for the session.
    """
    import torch  # here, not at the top: the Jazzy job's venv has no torch

    from naima_ros.checkpoint import save_checkpoint, use_seeded_backbone
    from naima_ros.model import build_model

    cache: dict = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def make(scale: int = 8, preset: str = "light", **overrides) -> Path:
        key = (scale, preset, tuple(sorted(overrides.items())))
        if key not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = build_model(preset, scale, seed=0, **overrides)
            use_seeded_backbone(model, 0)
            if preset == "light":  # its head is zero-initialised (output = bicubic): make the network matter
                generator = torch.Generator().manual_seed(0)
                with torch.no_grad():
                    model.upsampler.head.weight.normal_(0.0, 0.05, generator=generator)
            path = root / f"{preset}_x{scale}_{len(cache)}.safetensors"
            save_checkpoint(path, model, preset=preset, training={"note": "untrained test fixture"})
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data folder (``NAIMA_SHARED_DATA`` or ../shared/data); skip if absent."""
    path = Path(os.environ.get("NAIMA_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "gdsr_test").is_dir():
        pytest.skip(f"shared data not found at {path} (set NAIMA_SHARED_DATA); skipping real-data test")
    return path


@pytest.fixture(scope="module")
def context():
    """An rclpy context of the test module's own (its ROS_DOMAIN_ID is set when the module is imported)."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)
