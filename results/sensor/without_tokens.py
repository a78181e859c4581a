"""What do the semantic tokens cost? Write a copy of a checkpoint without its semantic branch: the same
config with encoder none (no EfficientNet/DINOv2, no token projectors, no GTA attention) and every other
tensor copied. With the GTAs' α near 0 (sensor_x8_alpha_zero scores as the model) it computes nearly the same
depth; bench/bench_model.py times both in one run (results/sensor/README.md)."""

import dataclasses
import sys

from naima_ros.checkpoint import load_checkpoint, save_checkpoint
from naima_ros.model.naima import Naima

source, target = sys.argv[1], sys.argv[2]
model, meta = load_checkpoint(source)
config = dataclasses.replace(model.config, encoder="none")
plain = Naima(config)
state = {k: v for k, v in model.state_dict().items() if k in plain.state_dict()}
plain.load_state_dict(state, strict=True)
save_checkpoint(target, plain, preset=meta["preset"], training=meta["training"], metrics=meta.get("metrics"),
                extra={"without_tokens_of": source, "confidence": meta.get("confidence")})
print(f"wrote {target}: {source} without its semantic branch ({len(state)} tensors)")
