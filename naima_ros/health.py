"""Run-time health checks of the served stream, ROS-free: `ros.diagnostics` turns them into
`/diagnostics` statuses.

- `FrequencyStatus` and `TimeStampStatus` follow diagnostic_updater's classes of the same names
  (its `TopicDiagnostic` pairs them), so monitors and aggregators read them as they read any
  driver's: the rate over a sliding window of updates, WARN outside [min (1 - tol), max (1 + tol)],
  ERROR with no event in the window; the stamp age (receipt or publication time minus
  header.stamp: latency from the image stamp, not from arrival), WARN outside its bounds.
- `StreamHealth`: the served stream as the node reports it, one of each of the above plus the
  self-check below, thread-safe (the serving thread records, the diagnostics timer reports).
- `self_check`: the output depth area-averaged back onto the LR grid against the valid LR input
  it was made from, as the RMSE in metres and the share of LR pixels off by more than a tolerance.
  A guided upsampler keeps its output consistent with its input except at edges, so the numbers
  are small and steady for a given scene and camera; a misregistration, a wrong scale or a model
  gone wrong moves them. `SelfCheckMonitor` WARNs when they jump against their own recent history,
  or when the share beyond tolerance is large outright.

Levels are diagnostic_msgs' (OK 0, WARN 1, ERROR 2). Times are seconds from the caller's clock,
so tests inject them.
"""
from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["ERROR", "OK", "WARN", "FrequencyStatus", "SelfCheck", "SelfCheckMonitor",
           "StreamHealth", "TimeStampStatus", "merge_summary", "self_check"]

OK, WARN, ERROR = 0, 1, 2
WINDOW_UPDATES = 5  # diagnostic_updater's FrequencyStatusParam default window
MIN_STAMP_AGE_S = -1.0  # stamps up to 1 s in the future are acceptable (TimeStampStatus default)


def merge_summary(level: int, message: str, new_level: int, new_message: str) -> tuple[int, str]:
    """diagnostic_updater's `mergeSummary`: two non-OK messages are joined with "; ", a higher
    level replaces the message, the level is the higher one."""
    if new_level > OK and level > OK:
        message = f"{message}; {new_message}" if message else new_message
    elif new_level > level:
        message = new_message
    return max(level, new_level), message


class FrequencyStatus:
    """diagnostic_updater's FrequencyStatus: events per second over the last `window_size`
    updates (one update per diagnostics period).

    Args:
        min_hz, max_hz: the acceptable rate; equal for a target rate.
        tolerance: relative slack on both bounds: OK inside [min (1 - tol), max (1 + tol)].
        window_size: updates the rate is measured over.
        start_s: the clock's time now (the window's first update measures from it).
    """

    def __init__(self, min_hz: float, max_hz: float, tolerance: float = 0.1,
                 window_size: int = 5, start_s: float = 0.0):
        if not 0 <= min_hz <= max_hz:
            raise ValueError(f"frequency bounds must satisfy 0 <= min <= max, got {min_hz}, "
                             f"{max_hz}")
        self.min_hz, self.max_hz, self.tolerance = float(min_hz), float(max_hz), float(tolerance)
        self.count = 0
        # (time, count) of the last window_size updates, oldest first, as the updater's ring
        size = max(int(window_size), 1)
        self._history = collections.deque([(start_s, 0)] * size, maxlen=size)

    def tick(self) -> None:
        """One event (a published frame)."""
        self.count += 1

    def update(self, now_s: float) -> tuple[int, str, dict]:
        """(level, message, values) at `now_s`; closes one update of the window."""
        t0, c0 = self._history[0]
        self._history.append((now_s, self.count))
        events, window_s = self.count - c0, now_s - t0
        freq = events / window_s if window_s > 0 else 0.0
        low, high = self.min_hz * (1 - self.tolerance), self.max_hz * (1 + self.tolerance)
        if events == 0:
            level, message = ERROR, "No events recorded."
        elif freq < low:
            level, message = WARN, "Frequency too low."
        elif freq > high:
            level, message = WARN, "Frequency too high."
        else:
            level, message = OK, "Desired frequency met"
        values = {"Events in window": events, "Events since startup": self.count,
                  "Duration of window (s)": round(window_s, 6),
                  "Actual frequency (Hz)": round(freq, 6)}
        if self.min_hz == self.max_hz:
            values["Target frequency (Hz)"] = self.min_hz
        if self.min_hz > 0:
            values["Minimum acceptable frequency (Hz)"] = round(low, 6)
        if math.isfinite(self.max_hz):
            values["Maximum acceptable frequency (Hz)"] = round(high, 6)
        return level, message, values


class TimeStampStatus:
    """diagnostic_updater's TimeStampStatus: the age of each header stamp when the output goes
    out (now - stamp), WARN when one was outside [min_acceptable_s, max_acceptable_s] since the
    last update, ERROR for a zero stamp.

    Args:
        min_acceptable_s: the smallest acceptable age (negative: stamps from the future).
        max_acceptable_s: the largest acceptable age.
    """

    def __init__(self, min_acceptable_s: float = -1.0, max_acceptable_s: float = 5.0):
        self.min_acceptable_s, self.max_acceptable_s = min_acceptable_s, max_acceptable_s
        self._reset()

    def _reset(self) -> None:
        self.early_s, self.late_s = math.inf, -math.inf
        self.zero_seen = self.too_early = self.too_late = False
        self.count = 0

    def tick(self, stamp_s: float, now_s: float) -> float:
        """One output of header stamp `stamp_s` at `now_s` (same clock); returns its age (s)."""
        self.count += 1
        if stamp_s == 0:
            self.zero_seen = True
            return math.nan
        age = now_s - stamp_s
        self.early_s, self.late_s = min(self.early_s, age), max(self.late_s, age)
        self.too_early |= age < self.min_acceptable_s
        self.too_late |= age > self.max_acceptable_s
        return age

    def update(self) -> tuple[int, str, dict]:
        """(level, message, values) of the stamps since the last update; starts a new period."""
        level, message = OK, "Timestamps are reasonable."
        if not self.count:
            message = "No data since last update."
        else:
            if self.too_early:
                level, message = merge_summary(level, message, WARN,
                                               "Timestamps too far in future seen.")
            if self.too_late:
                level, message = merge_summary(level, message, WARN,
                                               "Timestamps too far in past seen.")
            if self.zero_seen:
                level, message = merge_summary(level, message, ERROR, "Zero timestamp seen.")
        values = {"Earliest timestamp delay:": self.early_s if self.count else math.nan,
                  "Latest timestamp delay:": self.late_s if self.count else math.nan,
                  "Earliest acceptable timestamp delay:": self.min_acceptable_s,
                  "Latest acceptable timestamp delay:": self.max_acceptable_s}
        self._reset()
        return level, message, values


@dataclass(frozen=True)
class SelfCheck:
    """The output against its own input on the LR grid (one frame)."""

    rmse_m: float  # over the compared LR pixels; NaN when none
    beyond_share: float  # share of compared pixels off by more than the tolerance; NaN if none
    compared: int  # LR pixels valid in the input and covered by the output


def self_check(depth_hr: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray | None = None,
               *, tolerance_m: float = 0.05, tolerance_rel: float = 0.02,
               min_coverage: float = 0.5) -> SelfCheck:
    """The output area-averaged back onto the LR grid against the valid LR input.

    Args:
        depth_hr: (s h, s w) output metres, NaN invalid.
        depth_lr: (h, w) the LR depth the predictor took (registered, range-masked), metres.
        valid_lr: (h, w) bool, the LR pixels that were valid input; default: finite and > 0.
        tolerance_m, tolerance_rel: a pixel is beyond tolerance when |mean_hr - lr| exceeds
            max(tolerance_m, tolerance_rel x lr) (ToF noise grows with distance).
        min_coverage: an LR pixel is compared only when at least this share of its s x s output
            pixels is valid.

    Returns:
        `SelfCheck`.

    Any size ratio: the output's footprint mean over each input pixel (``resample_valid``: an
    s x s block mean at an integer ratio, area-weighted otherwise).

    Raises:
        ValueError: an empty input.
    """
    from naima_ros.resample import resample_valid

    depth_hr, depth_lr = np.asarray(depth_hr, np.float64), np.asarray(depth_lr, np.float64)
    h, w = depth_lr.shape
    if h == 0 or w == 0:
        raise ValueError(f"the input {w}x{h} is empty")
    mean, covered = resample_valid(depth_hr, np.isfinite(depth_hr), (h, w), min_coverage=min_coverage)
    if valid_lr is None:
        with np.errstate(invalid="ignore"):
            valid_lr = np.isfinite(depth_lr) & (depth_lr > 0)
    compared = np.asarray(valid_lr, bool) & covered
    n = int(compared.sum())
    if n == 0:
        return SelfCheck(math.nan, math.nan, 0)
    diff = mean[compared] - depth_lr[compared]
    tolerance = np.maximum(tolerance_m, tolerance_rel * depth_lr[compared])
    return SelfCheck(float(np.sqrt(np.mean(diff**2))),
                     float(np.mean(np.abs(diff) > tolerance)), n)


class SelfCheckMonitor:
    """Whether the self-check jumped: the recent frames against the frames before them.

    Args:
        window: frames of history the baseline is the median of.
        recent: frames the current value is the median of (one odd frame is not a jump).
        jump_factor: WARN when the recent RMSE exceeds this times the baseline ...
        min_rmse_m: ... and this absolute floor (a jump from 2 to 7 mm is noise, not a fault).
        max_beyond_share: WARN when the recent share beyond tolerance exceeds this, whatever
            the history.
    """

    def __init__(self, window: int = 50, recent: int = 3, jump_factor: float = 3.0,
                 min_rmse_m: float = 0.05, max_beyond_share: float = 0.25):
        self.window, self.recent = window, recent
        self.jump_factor, self.min_rmse_m = jump_factor, min_rmse_m
        self.max_beyond_share = max_beyond_share
        self._checks: collections.deque = collections.deque(maxlen=window + recent)

    def add(self, check: SelfCheck) -> None:
        if check.compared:
            self._checks.append(check)

    def status(self) -> tuple[int, str, dict]:
        """(level, message, values) of the frames seen so far."""
        checks = list(self._checks)
        if not checks:
            return OK, "no frame checked yet", {"self_check.frames": 0}
        now = checks[-self.recent:]
        rmse = float(np.median([c.rmse_m for c in now]))
        beyond = float(np.median([c.beyond_share for c in now]))
        history = checks[:-self.recent]
        baseline = float(np.median([c.rmse_m for c in history])) if history else math.nan
        values = {"self_check.rmse_m": round(rmse, 5), "self_check.beyond_share": round(beyond, 4),
                  "self_check.baseline_rmse_m": round(baseline, 5),
                  "self_check.frames": len(checks)}
        level, message = OK, "output consistent with its input"
        if history and rmse > self.jump_factor * baseline and rmse > self.min_rmse_m:
            level, message = merge_summary(
                level, message, WARN, f"output departs from its LR input: RMSE {rmse:.3f} m, "
                f"was {baseline:.3f} m (misregistration, wrong scale or a model gone wrong?)")
        if beyond > self.max_beyond_share:
            level, message = merge_summary(
                level, message, WARN, f"{100 * beyond:.0f} % of LR pixels differ from the "
                f"output's area average beyond tolerance")
        return level, message, values


class StreamHealth:
    """The served stream's health: diagnostic_updater's TopicDiagnostic of the output (frequency,
    stamp age) and the self-check of the output against its input, thread-safe.

    The serving thread calls `published` per frame (cheap: counters and two references); the
    diagnostics timer calls `report` once per period, which self-checks the newest frame (one
    per period: the arithmetic stays off the serving thread and its cost bounded).

    Args:
        min_hz, max_hz: the acceptable served rate; `max_hz` 0 or inf: no upper bound.
        tolerance: relative slack on both rate bounds.
        max_age_s: the oldest acceptable output (now - depth stamp).
        tolerance_m, tolerance_rel, jump_factor: of `self_check` and `SelfCheckMonitor`.
        start_s: the clock's time now.
    """

    def __init__(self, min_hz: float = 0.0, max_hz: float = 0.0, tolerance: float = 0.1,
                 max_age_s: float = 5.0, tolerance_m: float = 0.05, tolerance_rel: float = 0.02,
                 jump_factor: float = 3.0, start_s: float = 0.0):
        self.frequency = FrequencyStatus(min_hz, max_hz or math.inf, tolerance, WINDOW_UPDATES,
                                         start_s)
        self.stamps = TimeStampStatus(MIN_STAMP_AGE_S, max_age_s)
        self.monitor = SelfCheckMonitor(jump_factor=jump_factor)
        self.tolerance_m, self.tolerance_rel = tolerance_m, tolerance_rel
        self._lock = threading.Lock()
        self._newest = None  # (depth_hr, depth_lr) not self-checked yet

    def published(self, stamp_s: float, now_s: float, depth_hr: np.ndarray | None = None,
                  depth_lr: np.ndarray | None = None) -> float:
        """One published frame of depth stamp `stamp_s` at `now_s` (same clock), with the output
        and the LR input it was made from; returns its age (s, NaN for a zero stamp)."""
        with self._lock:
            self.frequency.tick()
            if depth_hr is not None and depth_lr is not None:
                self._newest = (depth_hr, depth_lr)
            return self.stamps.tick(stamp_s, now_s)

    def report(self, now_s: float) -> tuple[tuple[int, str, dict], tuple[int, str, dict]]:
        """((level, message, values) of the topic, of the self-check) at `now_s`."""
        with self._lock:
            newest, self._newest = self._newest, None
            level, message, values = self.frequency.update(now_s)
            stamp_level, stamp_message, stamp_values = self.stamps.update()
        topic = (*merge_summary(level, message, stamp_level, stamp_message),
                 {**values, **stamp_values})
        if newest is not None:
            try:
                self.monitor.add(self_check(*newest, tolerance_m=self.tolerance_m,
                                            tolerance_rel=self.tolerance_rel))
            except ValueError:  # an empty input: nothing to compare
                pass
        return topic, self.monitor.status()
