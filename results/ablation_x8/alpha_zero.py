"""Is the semantic branch used? Write a copy of a variant's checkpoint with every GTA α set to 0 (the depth
features pass the attention unchanged), to be scored by naima-eval like the variant (evaluate_alpha_zero.sh)."""

import sys

import torch

from naima_ros.checkpoint import load_checkpoint, save_checkpoint

source, target = sys.argv[1], sys.argv[2]
model, meta = load_checkpoint(source)
with torch.no_grad():
    for gta in model.gtas:
        gta.attention.alpha.zero_()
save_checkpoint(target, model, preset=meta["preset"], training=meta["training"], metrics=meta.get("metrics"),
                extra={"alpha_zero_of": source})
print(f"wrote {target}: {source} with α = 0 in the four GTAs")
