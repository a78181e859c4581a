"""Node bookkeeping for `/diagnostics`: rates, latency percentiles, drops by reason, memory.

`NodeStats` is thread-safe: the subscription callbacks, the worker thread and the diagnostics
timer all write or read it. `InputWatch` tells why nothing is served while inputs arrive.
`status_message` turns a snapshot into a `diagnostic_msgs` status; its levels:

- WARN "loading model ..." from the first second of start-up until the model is warm;
- ERROR when the model failed to load (the node cannot serve);
- WARN with the reason when inputs arrive but nothing was served for a few input periods
  (`InputWatch.stall`), when real drops happened since the last status, or after a failed swap;
- OK otherwise. Superseded pairs (input faster than the model) are normal: an event, not a WARN.

Names follow diagnostic_updater: a status is `<node>: <task>` (`status_name`: the node's fully
qualified name without its leading slash, so aggregators' prefix rules match), the hardware_id
names the camera pair (`hardware_id`). `diagnostic_status` makes the other statuses of the node:
the output's topic status (diagnostic_updater's TopicDiagnostic: rate against the expected rate,
stamp age) and the output's self-check against its own input, both from the ROS-free
`naima_ros.health.StreamHealth`.
"""
from __future__ import annotations

import collections
import math
import resource
import threading
import time
from collections.abc import Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

__all__ = ["InputWatch", "NodeStats", "WarningThrottle", "diagnostic_status", "hardware_id",
           "memory_rss_mb", "status_message", "status_name"]

LATENCY_WINDOW = 200  # frames kept for the percentiles
STALL_PERIODS = 5  # inputs arriving but nothing served for this many input periods is a stall
STALL_MIN_S = 0.5  # ... and for at least this long
STAMPS_KEPT = 20  # per input, for the input period and the RGB/depth stamp offset
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
        # publication time - header stamp (ROS clock): the latency a consumer sees, from capture
        self.stamp_age_s: collections.deque = collections.deque(maxlen=LATENCY_WINDOW)
        self._period_start = time.monotonic()
        self._period_pairs = 0
        self._period_frames = 0
        self.input_rate_hz = 0.0
        self.output_rate_hz = 0.0

    def pair_received(self) -> None:
        with self._lock:
            self.pairs_received += 1
            self._period_pairs += 1

    def frame_published(self, latency_s: float, model_s: float,
                        stamp_age_s: float = math.nan) -> None:
        """`latency_s` from the pair's arrival, `stamp_age_s` from its header stamp."""
        with self._lock:
            self.frames_published += 1
            self._period_frames += 1
            self.latency_s.append(latency_s)
            self.model_s.append(model_s)
            if math.isfinite(stamp_age_s):
                self.stamp_age_s.append(stamp_age_s)

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
            age = np.array(self.stamp_age_s) * 1e3

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
                "stamp_age_p50_ms": pct(age, 50),
                "stamp_age_p95_ms": pct(age, 95),
            }


class InputWatch:
    """Whether the inputs arrive while nothing is served, and why (thread-safe).

    Args:
        topics: {"rgb": resolved RGB topic, "depth": resolved depth topic}.
        slop: the synchronizer's slop (s); `exact`: identical stamps only.
    """

    def __init__(self, topics: dict[str, str], slop: float, exact: bool = False):
        self.topics, self.slop, self.exact = topics, slop, exact
        self._lock = threading.Lock()
        self._seen = {key: collections.deque(maxlen=STAMPS_KEPT) for key in topics}
        self._since: float | None = None  # first input arrival after the last served frame
        self._last_drop: tuple[float, str, str] | None = None

    def seen(self, key: str, stamp_ns: int, now: float | None = None) -> None:
        """An input message arrived (`key` of `topics`)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen[key].append((now, stamp_ns))
            if self._since is None:
                self._since = now

    def served(self, now: float | None = None) -> None:
        with self._lock:
            self._since = None

    def dropped(self, reason: str, message: str, now: float | None = None) -> None:
        with self._lock:
            self._last_drop = (time.monotonic() if now is None else now, reason, message)

    def _period_s(self) -> float | None:
        gaps = [b[0] - a[0] for q in self._seen.values() for a, b in zip(q, list(q)[1:])]
        return float(np.median(gaps)) if gaps else None

    def stall(self, now: float | None = None, model_s: float = 0.0) -> str | None:
        """Why nothing was served for a few input periods although inputs arrive, or None.

        `model_s`: the model's recent time per frame (a slow model is not a stall).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            period = self._period_s()
            if self._since is None or period is None:
                return None
            window = max(STALL_PERIODS * period, STALL_MIN_S, 3.0 * model_s)
            recent = {k for k, q in self._seen.items() if q and now - q[-1][0] <= window}
            if not recent or now - self._since <= window:
                return None
            idle = f"nothing served for {now - self._since:.1f} s"
            if len(recent) < len(self.topics):
                (arriving,) = recent
                (missing,) = set(self.topics) - recent
                return (f"{idle}: {self.topics[arriving]} arrives but {self.topics[missing]} "
                        f"does not")
            if self._last_drop is not None and self._last_drop[0] >= self._since:
                _, reason, message = self._last_drop
                return f"{idle}: pairs are dropped [{reason}]: {message}"
            return f"{idle}: {self._offset_reason()}"

    def _offset_reason(self) -> str:
        rgb = np.array([t for _, t in self._seen["rgb"]], dtype=np.int64)
        depth = np.array([t for _, t in self._seen["depth"]], dtype=np.int64)
        nearest = rgb[np.abs(depth[:, None] - rgb[None, :]).argmin(axis=1)]
        offset_ms = float(np.median(depth - nearest)) / 1e6
        how = "with identical stamps" if self.exact else f"within slop {self.slop:g} s"
        side = "trail" if offset_ms > 0 else "lead"
        return (f"no RGB/depth pair {how}: depth stamps {side} RGB by {abs(offset_ms):.0f} ms")


def status_message(name: str, hardware_id: str, stamp, snapshot: dict, model: dict,
                   state: str, swap_state: str, recent_drops: int,
                   stall: str | None = None, warnings: Sequence[str] = (),
                   values: dict | None = None,
                   more: Sequence[DiagnosticStatus] = ()) -> DiagnosticArray:
    """One DiagnosticArray holding the node's status, then `more` statuses; `model` is the served
    model's description (or the one being loaded).

    Args:
        state: "loading: <what>", "failed: <why>" (the model could not be loaded), "inactive"
            (a managed node not activated) or "serving".
        stall: `InputWatch.stall`'s reason, if any.
        warnings: what is wrong with the last pair although it was served (e.g. extrinsics from
            the parameters because tf2 had none): a WARN while serving, below the reasons above.
        values: more key/values of the status (e.g. the extrinsics in use).
    """
    ready = state == "serving"
    if state.startswith("loading"):
        level, message = DiagnosticStatus.WARN, f"{state}, not serving yet"
    elif state.startswith("failed"):
        level, message = DiagnosticStatus.ERROR, f"model failed to load: {state[7:].strip()}"
    elif not ready:
        level, message = DiagnosticStatus.OK, state
    elif stall:
        level, message = DiagnosticStatus.WARN, stall
    elif recent_drops or swap_state.startswith("failed"):
        level, message = DiagnosticStatus.WARN, (f"{recent_drops} pairs dropped since last status"
                                                 if recent_drops else f"model swap {swap_state}")
    elif warnings:
        level, message = DiagnosticStatus.WARN, "; ".join(warnings)
    else:
        level, message = DiagnosticStatus.OK, "running"
    extra, values = values or {}, {
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
                "model_p50_ms", "stamp_age_p50_ms", "stamp_age_p95_ms"):
        if key in snapshot:
            values[key] = round(snapshot[key], 3)
    for key in ("pairs_received", "frames_published", "dropped_total"):
        values[key] = snapshot[key]
    values.update({f"dropped.{k}": v for k, v in sorted(snapshot["dropped"].items())})
    values.update({f"events.{k}": v for k, v in sorted(snapshot["events"].items())})
    values.update(extra)
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
    out = DiagnosticArray()
    out.header.stamp = stamp
    out.status = [status, *more]
    return out


def status_name(fully_qualified_name: str, task: str) -> str:
    """diagnostic_updater's status name `<node>: <task>`, the node as `ns/name` without the
    leading slash (ROS 1's updater: getName().substr(1); ROS 2's: the node's name, to which the
    namespace is added here so that two cameras' nodes stay apart)."""
    return f"{fully_qualified_name.lstrip('/')}: {task}"


def hardware_id(rgb_frame: str, depth_frame: str) -> str:
    """The camera pair the node serves, by frame_id ("none" before any frame, as
    diagnostic_updater asks of devices without an id)."""
    frames = [f for f in dict.fromkeys((rgb_frame, depth_frame)) if f]
    return " + ".join(frames) if frames else "none"


def diagnostic_status(name: str, hw_id: str, level: int, message: str,
                      values: dict) -> DiagnosticStatus:
    """A DiagnosticStatus with every value as a string (floats to 6 decimals: a stamp age of a
    clock far off must not lose its magnitude)."""
    def text(v):
        return str(round(v, 6)) if isinstance(v, float) else str(v)

    return DiagnosticStatus(level=bytes([level]), name=name, message=message,  # a `byte` field
                            hardware_id=hw_id,
                            values=[KeyValue(key=k, value=text(v)) for k, v in values.items()])
