"""naima_ros.model_slot without ROS: loading, warm-up, background swaps, a failed swap."""
import pytest

from naima_ros.model_slot import ModelLoadError, ModelSlot, ModelSpec, check_spec
from naima_ros.predictors import load_predictor


def spec(method="bicubic", scale=8, checkpoint="absent_x{scale}.safetensors"):
    return ModelSpec(method, checkpoint, scale, "auto", "auto")


class Recorder:
    """The real predictor factory, recording calls and warm-ups; can be told to fail."""

    def __init__(self):
        self.calls, self.warmups, self.fail = [], [], None

    def __call__(self, method, **kwargs):
        self.calls.append((method, kwargs))
        if self.fail:
            raise ValueError(self.fail)
        predictor = load_predictor(method, **kwargs)
        warmup = predictor.warmup
        predictor.warmup = lambda h, w: (self.warmups.append((h, w)), warmup(h, w))
        return predictor


def test_baseline_loads_without_checkpoint_and_warms_up():
    factory = Recorder()
    slot = ModelSlot(factory, log_info=lambda m: None)
    model = slot.start(spec(), warmup=(2, 48, 64))
    assert model.path is None and check_spec(spec()) is None
    assert factory.calls == [("bicubic", {"checkpoint": None, "scale": 8, "device": "auto",
                                          "precision": "auto"})]
    assert factory.warmups == [(48, 64), (48, 64)]
    d = model.describe()
    assert (d["method"], d["scale"], d["checkpoint"]) == ("bicubic", 8, None)
    assert model.summary() == "method bicubic (x8, no network)"


def test_network_spec_checks_the_file_before_loading():
    with pytest.raises(FileNotFoundError, match="absent_x4.safetensors"):
        check_spec(spec("naima", 4))
    slot = ModelSlot(Recorder())
    with pytest.raises(ModelLoadError, match="cannot start: .*not found"):
        slot.start(spec("naima"), warmup=(0, 0, 0))


def run_swap(slot, new_spec):
    failures, events = [], []

    def on_failure(kept, failed):
        failures.append((kept, failed))

    slot.swap(new_spec, (1, 16, 16), on_failure, events.append).join(timeout=60)
    return failures, events


def test_swap_serves_the_new_model_and_a_failed_swap_keeps_the_old():
    factory = Recorder()
    slot = ModelSlot(factory, log_info=lambda m: None, log_error=lambda m: None)
    first = slot.start(spec(), warmup=(0, 0, 0))
    failures, events = run_swap(slot, spec("guided_filter"))
    assert (failures, events) == ([], ["model_swap"])
    assert slot.model.spec.method == "guided_filter" and slot.state == "ok: guided_filter"
    assert factory.warmups == [(16, 16)]  # warmed up before it was served
    served = slot.model
    factory.fail = "injected load failure"
    failures, events = run_swap(slot, spec("jbu"))
    assert events == ["model_swap_failed"] and failures == [(served.spec, spec("jbu"))]
    assert slot.model is served and "injected load failure" in slot.state
    assert first is not served
    # a baseline's identity is its method and scale: another checkpoint value loads nothing
    calls = len(factory.calls)
    factory.fail = None
    run_swap(slot, spec("guided_filter", checkpoint="other.safetensors"))
    assert len(factory.calls) == calls and slot.model.predictor is served.predictor
    assert slot.model.spec.checkpoint == "other.safetensors"
