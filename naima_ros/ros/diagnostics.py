"""Node bookkeeping for `/diagnostics`: rates, latency percentiles, drops by reason, memory.

`NodeStats` is thread-safe: the subscription callbacks, the worker thread and the diagnostics
timer all write or read it. `status_message` turns a snapshot into a `diagnostic_msgs` status.
"""
from __future__ import annotations

import collections
import resource
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

__all__ = ["NodeStats", "WarningThrottle", "memory_rss_mb", "status_message"]

LATENCY_WINDOW = 200  # frames kept for the percentiles
MODEL_KEYS = ("method", "checkpoint", "preset", "scale", "device", "precision", "backbone")


def memory_rss_mb() -> float:
    """Resident memory of this process in MiB (current on Linux, peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class WarningThrottle:
    """At most one log line per key per `period_s`, reporting how many were suppressed."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, key: str, log, message: str) -> bool:
        """Log `message` via `log` unless `key` was logged within the period; True if logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] += 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        log(message + (f" ({suppressed} similar suppressed)" if suppressed else ""))
        return True


class NodeStats:
    """Counters and timing of the node since start, plus per-period rates."""

    def __init__(self):
        self._lock = threading.Lock()
        self.pairs_received = 0
        self.frames_published = 0
        self.dropped: collections.Counter = collections.Counter()
        self.events: collections.Counter = collections.Counter()
        self.latency_s: collections.deque = collections.deque(maxlen=LATENCY_WINDOW)
        self.model_s: collections.deque = collections.deque(maxlen=LATENCY_WINDOW)
        self._period_start = time.monotonic()
        self._period_pairs = 0
        self._period_frames = 0
        self.input_rate_hz = 0.0
        self.output_rate_hz = 0.0

    def pair_received(self) -> None:
        with self._lock:
            self.pairs_received += 1
            self._period_pairs += 1

    def frame_published(self, latency_s: float, model_s: float) -> None:
        with self._lock:
            self.frames_published += 1
            self._period_frames += 1
            self.latency_s.append(latency_s)
            self.model_s.append(model_s)

    def drop(self, reason: str, n: int = 1) -> int:
        """Count `n` dropped pairs for `reason`; returns the running count for it."""
        with self._lock:
            self.dropped[reason] += n
            return self.dropped[reason]

    def event(self, name: str) -> int:
        with self._lock:
            self.events[name] += 1
            return self.events[name]

    def roll_period(self) -> None:
        """Close the current rate period (call once per diagnostics publish)."""
        with self._lock:
            now = time.monotonic()
            dt = max(now - self._period_start, 1e-9)
            self.input_rate_hz = self._period_pairs / dt
            self.output_rate_hz = self._period_frames / dt
            self._period_start, self._period_pairs, self._period_frames = now, 0, 0

    def snapshot(self) -> dict:
        with self._lock:
            lat = np.array(self.latency_s) * 1e3
            mod = np.array(self.model_s) * 1e3

            def pct(a, q):
                return float(np.percentile(a, q)) if a.size else float("nan")

            return {
                "pairs_received": self.pairs_received,
                "frames_published": self.frames_published,
                "dropped_total": sum(self.dropped.values()),
                "dropped": dict(self.dropped),
                "events": dict(self.events),
                "input_rate_hz": self.input_rate_hz,
                "output_rate_hz": self.output_rate_hz,
                "latency_p50_ms": pct(lat, 50),
                "latency_p95_ms": pct(lat, 95),
                "model_p50_ms": pct(mod, 50),
            }


def status_message(name: str, hardware_id: str, stamp, snapshot: dict, model: dict,
                   ready: bool, swap_state: str, recent_drops: int) -> DiagnosticArray:
    """One DiagnosticArray holding the node's status; `model` is the served model's description.

    Level: ERROR until the model is loaded and warmed up, WARN if pairs were dropped since the
    last status or the last model swap failed, OK otherwise.
    """
    if not ready:
        level, message = DiagnosticStatus.ERROR, "not ready: model loading"
    elif recent_drops or swap_state.startswith("failed"):
        level, message = DiagnosticStatus.WARN, (f"{recent_drops} pairs dropped since last status"
                                                 if recent_drops else f"model swap {swap_state}")
    else:
        level, message = DiagnosticStatus.OK, "running"
    values = {
        "ready": ready,
        "method": model.get("method"),
        "checkpoint": model.get("checkpoint"),
        "preset": model.get("preset"),
        "scale": model.get("scale"),
        "device": model.get("device"),
        "precision": model.get("precision"),
        "backbone": model.get("backbone"),
        "model_swap": swap_state,
        # whatever else the predictor describes (e.g. its encoder), under its own name
        **{k: v for k, v in model.items() if k not in MODEL_KEYS},
        "memory_rss_mb": round(memory_rss_mb(), 1),
    }
    for key in ("input_rate_hz", "output_rate_hz", "latency_p50_ms", "latency_p95_ms",
                "model_p50_ms"):
        values[key] = round(snapshot[key], 3)
    for key in ("pairs_received", "frames_published", "dropped_total"):
        values[key] = snapshot[key]
    values.update({f"dropped.{k}": v for k, v in sorted(snapshot["dropped"].items())})
    values.update({f"events.{k}": v for k, v in sorted(snapshot["events"].items())})
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status]
    return out
