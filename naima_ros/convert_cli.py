"""``naima-convert``: a reference NAIMA ``.pth`` (NAIMA-GDSR) → this project's safetensors checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

from naima_ros.checkpoint import save_checkpoint, state_dict_mismatch
from naima_ros.model.convert import from_reference_state_dict, read_weights
from naima_ros.model.naima import build_model
from naima_ros.options import SCALES


def main(argv: list[str] | None = None) -> int:
    """``naima-convert``: a reference NAIMA ``.pth`` → this project's safetensors checkpoint."""
    parser = argparse.ArgumentParser(prog="naima-convert", description=main.__doc__)
    parser.add_argument("input", help="reference checkpoint (last.pth / epoch_N.pth), read with weights_only=True")
    parser.add_argument("output", help="output .safetensors (a .json sidecar is not needed: metadata is inside)")
    parser.add_argument("--scale", type=int, required=True, choices=SCALES)
    parser.add_argument("--dataset", default="nyuv2", help="training dataset tag stored in the metadata")
    args = parser.parse_args(argv)
    try:
        sd = from_reference_state_dict(read_weights(args.input))
        model = build_model("reference", args.scale, warn_untrained=False)
        problem = state_dict_mismatch(model, sd)
        if problem:
            raise ValueError(f"{args.input}: does not match the reference x{args.scale} model: {problem}")
        model.load_state_dict(sd, strict=True)
        model.backbone_identity = "reference-checkpoint (pretrained DINOv2 blocks, random frozen pos_embed)"
        model.backbone_pretrained = True
        save_checkpoint(args.output, model, preset="reference", extra={"source": str(args.input),
                                                                        "dataset": args.dataset})
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"naima-convert: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"written": args.output, "scale": args.scale}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
