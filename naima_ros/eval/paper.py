"""Published and reference numbers: the one place they live (data, not code).

Source: shared/data/README.md (RMSE in 8-bit units, NYU-trained weights, x4 / x8 / x16). The
README gives no NYU / RGB-D-D / TOFDSR (Table 1) values, so Table 1's paper row stays empty until
they are added here.
"""

PAPER_NAIMA: dict[str, dict[int, float]] = {
    "middlebury": {4: 1.03, 8: 1.62, 16: 2.75},
    "lu": {4: 0.84, 8: 1.44, 16: 3.34},
}
# The README's measured bicubic anchors (modcrop, depth/255, per-image RMSE x255 averaged).
README_BICUBIC_ANCHORS: dict[str, dict[str, dict[int, float]]] = {
    "pil": {"middlebury": {4: 2.28, 8: 3.98, 16: 6.37}, "lu": {4: 2.42, 8: 4.54, 16: 7.38}},
    "torch": {"middlebury": {4: 2.23, 8: 3.92, 16: 6.28}, "lu": {4: 2.36, 8: 4.44, 16: 7.26}},
    "pil_shave6": {"middlebury": {4: 2.30, 8: 4.00, 16: 6.34}, "lu": {4: 2.47, 8: 4.64, 16: 7.52}},
}
