"""naima_ros.health: diagnostic_updater's frequency and stamp checks, and the output's self-check,
numerically (hand cases, an independent loop reference, the failure modes it should catch)."""
import math

import numpy as np
import pytest

from naima_ros.health import (ERROR, OK, WARN, FrequencyStatus, SelfCheck, SelfCheckMonitor,
                              TimeStampStatus, merge_summary, self_check)


# ---------------------------------------------------------------------- frequency
def run_frequency(status, rate_hz, seconds, start_s=0.0, period_s=1.0):
    """Events at `rate_hz` for `seconds`, one update per period; the last update's result."""
    t, out = start_s, None
    for _ in range(int(seconds / period_s)):
        for _ in range(round(rate_hz * period_s)):
            status.tick()
        t += period_s
        out = status.update(t)
    return out


@pytest.mark.parametrize("rate,level,message", [
    (30.0, OK, "Desired frequency met"),
    (28.0, OK, "Desired frequency met"),  # below 30 but inside 30 x (1 - 0.1)
    (26.0, WARN, "Frequency too low."),
    (34.0, WARN, "Frequency too high."),
    (0.0, ERROR, "No events recorded."),
])
def test_frequency_bounds_with_tolerance(rate, level, message):
    got_level, got_message, values = run_frequency(FrequencyStatus(30.0, 30.0, 0.1), rate, 10)
    assert (got_level, got_message) == (level, message)
    assert values["Target frequency (Hz)"] == 30.0
    assert values["Minimum acceptable frequency (Hz)"] == pytest.approx(27.0)
    assert values["Maximum acceptable frequency (Hz)"] == pytest.approx(33.0)
    assert values["Actual frequency (Hz)"] == pytest.approx(rate)


def test_frequency_window_slides_over_the_last_updates():
    status = FrequencyStatus(5.0, 20.0, 0.0, window_size=5, start_s=100.0)
    assert run_frequency(status, 10, 5, start_s=100.0)[0] == OK
    # the rate drops to 2 Hz: the window still holds 10 Hz seconds for a while, then WARNs
    levels = [run_frequency(status, 2, 1, start_s=105.0 + k)[0] for k in range(5)]
    assert levels[0] == OK and levels[-1] == WARN
    _, _, values = status.update(111.0)
    assert values["Events in window"] == 2 * 4 and values["Duration of window (s)"] == 5.0
    assert values["Events since startup"] == 50 + 10
    assert "Target frequency (Hz)" not in values
    inf = FrequencyStatus(5.0, math.inf)
    assert "Maximum acceptable frequency (Hz)" not in run_frequency(inf, 100, 5)[2]
    with pytest.raises(ValueError, match="min <= max"):
        FrequencyStatus(10.0, 5.0)


# ---------------------------------------------------------------------- stamps
def test_stamp_age_is_from_the_header_stamp_and_bounded():
    stamps = TimeStampStatus(-1.0, 0.5)
    assert stamps.tick(100.0, 100.12) == pytest.approx(0.12)
    stamps.tick(100.1, 100.3)
    level, message, values = stamps.update()
    assert (level, message) == (OK, "Timestamps are reasonable.")
    assert values["Earliest timestamp delay:"] == pytest.approx(0.12)
    assert values["Latest timestamp delay:"] == pytest.approx(0.2)
    stamps.tick(100.0, 101.0)  # 1 s old: a model slower than the bound
    stamps.tick(105.0, 103.0)  # 2 s in the future: another machine's clock
    level, message = stamps.update()[:2]
    assert level == WARN
    assert message == "Timestamps too far in future seen.; Timestamps too far in past seen."
    stamps.tick(0.0, 5.0)
    assert stamps.update()[:2] == (ERROR, "Zero timestamp seen.")
    assert stamps.update()[:2] == (OK, "No data since last update.")  # a new period each update


def test_merge_summary_is_diagnostic_updaters():
    assert merge_summary(OK, "fine", WARN, "slow") == (WARN, "slow")
    assert merge_summary(WARN, "slow", ERROR, "dead") == (ERROR, "slow; dead")
    assert merge_summary(WARN, "slow", OK, "fine") == (WARN, "slow")
    assert merge_summary(OK, "fine", OK, "also fine") == (OK, "fine")


# ---------------------------------------------------------------------- self-check
def reference_self_check(hr, lr, valid, tol_m, tol_rel, coverage):
    """Pixel by pixel, in plain Python."""
    s = hr.shape[0] // lr.shape[0]
    diffs, beyond = [], 0
    for i in range(lr.shape[0]):
        for j in range(lr.shape[1]):
            block = [hr[i * s + a, j * s + b] for a in range(s) for b in range(s)
                     if np.isfinite(hr[i * s + a, j * s + b])]
            if not valid[i, j] or len(block) < coverage * s * s:
                continue
            d = sum(block) / len(block) - lr[i, j]
            diffs.append(d)
            beyond += abs(d) > max(tol_m, tol_rel * lr[i, j])
    if not diffs:
        return math.nan, math.nan, 0
    return math.sqrt(sum(d * d for d in diffs) / len(diffs)), beyond / len(diffs), len(diffs)


def test_self_check_hand_case():
    lr = np.array([[1.0, 2.0], [3.0, 4.0]])
    hr = np.kron(lr, np.ones((2, 2)))
    assert self_check(hr, lr) == SelfCheck(0.0, 0.0, 4)
    hr[0:2, 2:4] += 0.1  # one LR pixel off by 10 cm: RMSE sqrt(0.01 / 4), 1 of 4 beyond 5 cm
    got = self_check(hr, lr, tolerance_m=0.05, tolerance_rel=0.0)
    assert got.rmse_m == pytest.approx(0.05) and got.beyond_share == 0.25 and got.compared == 4
    # relative tolerance: 2 % of 2 m is 4 cm < 10 cm, 5 % is 10 cm: not beyond
    assert self_check(hr, lr, tolerance_m=0.0, tolerance_rel=0.051).beyond_share == 0.0
    hr[0, 0] = hr[1, 1] = hr[0, 1] = np.nan  # 1 of 4 output pixels left: below half coverage
    lr_invalid = lr.copy()
    lr_invalid[1, 1] = np.nan
    assert self_check(hr, lr_invalid).compared == 2


def test_self_check_against_a_loop_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    for s in (2, 4, 8):
        lr = rng.uniform(0.5, 8.0, (5, 7))
        hr = np.kron(lr, np.ones((s, s))) + rng.normal(0, 0.05, (5 * s, 7 * s))
        hr[rng.random(hr.shape) < 0.3] = np.nan
        valid = rng.random(lr.shape) > 0.2
        got = self_check(hr, lr, valid, tolerance_m=0.03, tolerance_rel=0.01, min_coverage=0.6)
        want = reference_self_check(hr, lr, valid, 0.03, 0.01, 0.6)
        assert got.compared == want[2] > 0
        assert got.rmse_m == pytest.approx(want[0], rel=1e-5)  # the footprint means are float32
        assert got.beyond_share == pytest.approx(want[1])


def test_self_check_edge_cases():
    assert math.isnan(self_check(np.full((4, 4), np.nan), np.ones((2, 2))).rmse_m)
    assert self_check(np.ones((4, 4)), np.full((2, 2), np.nan)).compared == 0
    with pytest.raises(ValueError, match="empty"):
        self_check(np.ones((4, 6)), np.ones((0, 2)))


def test_self_check_on_any_size_ratio():
    """A phone ToF (ratio 2.67) and depth aligned to the RGB (ratio 1): a right output passes, a scaled one not."""
    yy, xx = np.mgrid[0:384, 0:512]
    hr = 1.0 + 0.002 * xx + 0.001 * yy
    for lr_hw in ((144, 192), (384, 512)):
        ly, lx = np.mgrid[0:lr_hw[0], 0:lr_hw[1]]
        ratio = 384 / lr_hw[0]
        lr = 1.0 + 0.002 * ((lx + 0.5) * ratio - 0.5) + 0.001 * ((ly + 0.5) * ratio - 0.5)
        right = self_check(hr, lr)
        assert right.compared > 0.9 * lr.size and right.rmse_m < 2e-3 and right.beyond_share == 0
        assert self_check(1.2 * hr, lr).beyond_share > 0.9


def smooth_scene(h=12, w=16):
    yy, xx = np.mgrid[0:h, 0:w]
    return 1.5 + 0.05 * xx + 0.02 * yy + 0.3 * (xx > w // 2)  # a plane with a step


def upsample(lr, s):
    return np.kron(lr, np.ones((s, s)))


def test_monitor_warns_when_the_output_jumps_and_only_then():
    """Steady frames, then the failure modes it is for: a model gone wrong (output 30 % off),
    a wrong scale (x4 output served as x8), a misregistered depth the output follows the RGB for."""
    rng = np.random.default_rng(1)
    lr, s = smooth_scene(), 8

    def steady():
        return self_check(upsample(lr, s) + rng.normal(0, 0.01, (12 * s, 16 * s)), lr)

    broken = {
        "model gone wrong": lambda: self_check(1.3 * upsample(lr, s), lr),
        "wrong scale": lambda: self_check(upsample(upsample(lr, 4)[:12, :16], s), lr),
        "misregistered": lambda: self_check(upsample(np.roll(lr, 2, axis=1), s), lr),
    }
    for name, frame in broken.items():
        monitor = SelfCheckMonitor(window=20, recent=3)
        for _ in range(20):
            monitor.add(steady())
        assert monitor.status()[0] == OK, name
        monitor.add(frame())  # one odd frame is not a jump
        assert monitor.status()[0] == OK, name
        for _ in range(2):
            monitor.add(frame())
        level, message, values = monitor.status()
        assert level == WARN, (name, message, values)
        assert values["self_check.rmse_m"] > 3 * values["self_check.baseline_rmse_m"]
    quiet = SelfCheckMonitor()
    assert quiet.status() == (OK, "no frame checked yet", {"self_check.frames": 0})
    quiet.add(SelfCheck(math.nan, math.nan, 0))  # nothing compared: not a frame
    assert quiet.status()[2]["self_check.frames"] == 0


def test_monitor_warns_on_a_large_share_beyond_tolerance_without_history():
    monitor = SelfCheckMonitor()
    monitor.add(SelfCheck(0.2, 0.6, 100))
    level, message, _ = monitor.status()
    assert level == WARN and "60 % of LR pixels" in message
