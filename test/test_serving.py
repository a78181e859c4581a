"""naima_ros.serving without ROS: the pair policy on plain field objects (the parameter table and
its validation: test_contract.py)."""
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from naima_ros import serving
from naima_ros.contract import DEFAULTS
from naima_ros.drops import DROP_REASONS, Drop
from naima_ros.confidence import Prediction
from naima_ros.serving import FrameServer, ServeConfig

S, H, W = 2, 3, 4  # LR depth 3 x 4, RGB 6 x 8


class NearestPredictor:
    """Each LR value repeated over its S x S block: an output whose every pixel is known."""

    scale = S

    def __call__(self, rgb, depth):
        assert rgb.shape == (H * S, W * S, 3) and rgb.flags.writeable
        return np.kron(depth, np.ones((S, S), np.float32)).astype(np.float32)

    def predict(self, rgb, depth, min_confidence=None):
        depth_hr = self(rgb, depth)
        return Prediction(depth_hr, np.where(np.isfinite(depth_hr), 0.75, 0.0).astype(np.float32))


def msg(stamp_ns, pixels, encoding, frame_id="rgb_optical"):
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec),
                                                  frame_id=frame_id),
                           height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                           step=pixels.nbytes // pixels.shape[0], is_bigendian=0,
                           data=pixels.tobytes())


def info(width=W * S, height=H * S):
    return SimpleNamespace(width=width, height=height, binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
                           k=[10.0, 0, 3.5, 0, 10.0, 2.5, 0, 0, 1], p=[0.0] * 12,
                           d=[0.0] * 5, r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                           distortion_model="plumb_bob")


def pair(stamp_ns, depth=None, rgb_encoding="rgb8"):
    depth = np.full((H, W), 2.0, np.float32) if depth is None else depth
    rgb = np.arange(H * S * W * S * 3, dtype=np.uint8).reshape(H * S, W * S, 3)
    return (msg(stamp_ns, rgb, rgb_encoding),
            msg(stamp_ns, depth.astype("<f4"), "32FC1", frame_id="tof_optical"))


def test_outputs_masked_to_the_range_and_encoded():
    depth = np.array([[0.5, 2.0, 20.0, np.nan]] * H, np.float32)
    frame = FrameServer().serve(NearestPredictor(), *pair(10**9, depth), info(),
                                ServeConfig(min_depth=1.0, max_depth=10.0,
                                            output_encoding="16UC1", publish_points=False))
    want = np.kron(np.where((depth >= 1.0) & (depth <= 10.0), depth, np.nan), np.ones((S, S)))
    np.testing.assert_array_equal(frame.depth_m, want.astype(np.float32))
    mm = np.frombuffer(frame.image.data, "<u2").reshape(H * S, W * S)
    np.testing.assert_array_equal(mm, np.nan_to_num(want * 1000).astype(np.uint16))
    assert frame.points is None and (frame.camera_info.width, frame.camera_info.height) == (8, 6)
    assert frame.frame_id == "rgb_optical"  # the output is on the RGB camera's grid
    # P = 0 (an unrectified camera): the output P is [K | 0]
    np.testing.assert_allclose(frame.camera_info.p.reshape(3, 4)[:, :3],
                               frame.camera_info.k.reshape(3, 3))


def test_stamps_zero_backwards_and_time_jump():
    events = []
    server = FrameServer(on_event=lambda name, message: events.append(name))
    config, predictor = ServeConfig(), NearestPredictor()
    server.serve(predictor, *pair(50 * 10**9), info(), config)
    for stamp, reason in ((0, "zero_stamp"), (50 * 10**9, "stamp_backwards"),
                          (49 * 10**9 + 1, "stamp_backwards")):
        with pytest.raises(Drop) as drop:
            server.serve(predictor, *pair(stamp), info(), config)
        assert drop.value.reason == reason
    assert events == []
    server.serve(predictor, *pair(40 * 10**9), info(), config)  # > 1 s back: time restarts
    assert events == ["time_jump_reset"] and server.last_stamp == 40 * 10**9
    server.reset_time()
    server.serve(predictor, *pair(30 * 10**9), info(), config)  # after a reset: no event
    assert events == ["time_jump_reset"]


def test_first_failed_check_names_the_drop():
    """The checks run in the node's order: stamps, then CameraInfo, then the images."""
    server, predictor = FrameServer(), NearestPredictor()
    with pytest.raises(Drop, match="zero header stamp"):
        server.serve(predictor, *pair(0, rgb_encoding="yuv422"), None, ServeConfig())
    with pytest.raises(Drop) as drop:
        server.serve(predictor, *pair(10**9, rgb_encoding="yuv422"), None, ServeConfig())
    assert drop.value.reason == "missing_camera_info"
    with pytest.raises(Drop) as drop:
        server.serve(predictor, *pair(10**9, rgb_encoding="yuv422"), info(), ServeConfig())
    assert drop.value.reason == "unsupported_encoding" and "yuv422" in str(drop.value)


def test_every_drop_reason_is_documented():
    source = Path(serving.__file__).read_text()
    raised = set(re.findall(r'Drop\("(\w+)"', source))
    assert raised == set(DROP_REASONS)


def test_config_from_parameter_values_and_no_torch():
    config = ServeConfig.from_values(dict(DEFAULTS, points_stride=3, method="bicubic"))
    assert config == ServeConfig(points_stride=3)
    # serving (and the predictors of the baselines) never need torch
    import subprocess
    code = ("import sys, naima_ros.serving, naima_ros.model_slot, naima_ros.predictors as p; "
            "p.load_predictor('bicubic', scale=8); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
