"""Datasets, procedural scenes and the training/test sample pipeline (ROS-free).

One module per dataset, each owning its protocol (units, clip range, normalisation):
``nyu`` (official .mat and the prepared .npy layout), ``rgbdd``, ``tofdsr``, ``middlebury_lu``,
``shared`` (the real data in ``../shared/data``), ``motorcycle`` (scikit-image's Middlebury 2014
scene) and ``synthetic`` (procedural scenes); ``registry`` names them for every tool (training,
naima-eval, naima-bag). ``transforms`` holds LR synthesis, normalisation and
the training crop/augmentations; ``datasets`` the torch ``Dataset`` classes. Every loader returns
``RGBDFrame`` records (or a lazy ``FrameList``) and raises ``DatasetError`` naming the path and
what was expected.
"""

from naima_ros.data.common import DatasetError, FrameList, RGBDFrame

__all__ = ["DatasetError", "FrameList", "RGBDFrame"]
