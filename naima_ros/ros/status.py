"""The node's /diagnostics side: the periodic status, the status while the model loads, and the
tracking of input publishers (a lost and returning publisher is a restart). The bookkeeping and
the message itself are `naima_ros.ros.diagnostics`.

`StatusReporting` is one of the mixins of `naima_ros.ros.phases.NodePhases`; it reads the state
that `NodePhases._setup` creates.
"""
from __future__ import annotations

import threading

from naima_ros.contract import TOPICS
from naima_ros.ros.diagnostics import diagnostic_status, hardware_id, status_message, status_name

__all__ = ["StatusReporting"]

TASK = "depth super-resolution"  # the node's main status: "<ns/node>: depth super-resolution"


class StatusReporting:
    """Status publishing and publisher tracking."""

    def matched_callback(self, role: str, info) -> None:
        """Track the publishers of an input (`role` of `naima_ros.contract.TOPICS`): a lost and
        returning publisher is a restart; stale halves go."""
        name = getattr(self, "_topics", {}).get(role) or TOPICS[role].name  # resolved (remapped)
        if info.current_count == 0 and info.current_count_change < 0:
            self._lost_publishers.add(role)
            self._warn("publisher_lost", f"{name} has no publisher any more")
        elif info.current_count_change > 0 and role in self._lost_publishers:
            self._lost_publishers.discard(role)
            stale = self._sync.reset() if hasattr(self._sync, "reset") else 0
            self._server.reset_time()  # a restarted driver may restart its clock
            n = self._stats.event("publisher_restart")
            self._warn("publisher_restart", f"{name} publisher restarted ({n} restarts); "
                       f"discarded {stale} unmatched queued messages")

    def diagnostics_callback(self) -> None:
        if self._publisher_watch is not None:
            self._publisher_watch.poll()
        sync_dropped = getattr(self._sync, "dropped", None)
        if sync_dropped is not None and sync_dropped > self._last_unmatched:
            # unmatched messages are normal with unequal input rates: counted, not warned
            for _ in range(sync_dropped - self._last_unmatched):
                self._stats.event("sync_unmatched")
            self._last_unmatched = sync_dropped
        self._stats.roll_period()
        self._publish_status()

    def _publish_status(self) -> None:
        snap = self._stats.snapshot()
        recent = snap["dropped_total"] - self._last_dropped_total
        self._last_dropped_total = snap["dropped_total"]
        model = self._slot.model
        described = model.describe() if model else {"method": self._values["method"]}
        stall = None
        if self._watch is not None and self._state == "serving":
            model_ms = snap["model_p50_ms"]
            stall = self._watch.stall(model_s=0.0 if model_ms != model_ms else model_ms / 1e3)
            if stall:
                self._warn("stall", stall)
        node, hw_id = self.get_fully_qualified_name(), hardware_id(*self._frames)
        more, warnings, values = [], [], {}
        if self._state == "serving":
            topic, check = self._health.report(self._ros_now_s())
            more = [diagnostic_status(status_name(node, f"{self._output_topic} topic status"),
                                      hw_id, *topic),
                    diagnostic_status(status_name(node, "self-check"), hw_id, *check)]
            warnings, values = list(self._pair_warnings.values()), self._registration
        self._diag_pub.publish(status_message(
            status_name(node, TASK), hw_id, self.get_clock().now().to_msg(), snap, described,
            self._state, self._slot.state, recent, stall, warnings, values, more))

    def _startup_status(self, loaded: threading.Event) -> None:
        """Publish the loading status every diagnostics period until the model is loaded."""
        while not loaded.is_set():
            try:
                self._publish_status()
            except Exception:  # noqa: BLE001 (the node is being destroyed: nothing to tell)
                return
            loaded.wait(self._values["diagnostic_updater.period"])
