"""The parity fixtures' fill rule (docs/model.md §8): deterministic values for every reference state-dict entry."""

import csv
from pathlib import Path

import numpy as np
import torch

from naima_ros.model.encoders import splitmix_uniform

FIXTURES = Path(__file__).parent / "fixtures"


def reference_keys(scale: int) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, kind) of the reference model's state dict, in order."""
    with open(FIXTURES / f"reference_keys_x{scale}.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["key"], () if r["shape"] == "scalar" else tuple(int(d) for d in r["shape"].split("x")), r["kind"])
            for r in rows]


def fill_value(key: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    leaf = key.rsplit(".", 1)[-1]
    base = splitmix_uniform(key, n)
    if leaf == "p" and len(shape) == 2:
        perm = np.argsort(base[: shape[0]], kind="stable")
        value = np.eye(shape[0])[perm]
    elif leaf == "sign_s":
        value = np.where(base >= 0, 1.0, -1.0)
    elif leaf == "alpha":
        value = np.full(n, 0.5)
    elif leaf == "gamma":
        value = 0.5 + 0.25 * base
    elif leaf == "log_s":
        value = 0.1 * base
    elif leaf in ("l", "u"):
        value = 0.3 * base / np.sqrt(shape[0])
    elif leaf in ("cls_token", "mask_token", "pos_embed"):
        value = 0.5 * base
    elif len(shape) >= 2:
        value = np.sqrt(3.0) * base / np.sqrt(n / shape[0])
    elif leaf == "bias":
        value = 0.1 * base
    elif leaf == "weight" and "norm" in key:
        value = 1 + 0.2 * base
    elif leaf == "weight":
        value = 0.25 + 0.1 * base
    else:
        value = 0.1 * base
    if ".pha_fuse." in key:
        value = value * 1e-3
    return np.asarray(value, dtype=np.float64).reshape(shape).astype(np.float32)


def filled_reference_state_dict(scale: int) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(fill_value(key, shape)) for key, shape, _ in reference_keys(scale)}


def load_fixture(scale: int) -> dict[str, torch.Tensor]:
    data = np.load(FIXTURES / f"parity_x{scale}.npz")
    return {k: torch.from_numpy(data[k]) for k in ("rgb", "depth", "output")}
