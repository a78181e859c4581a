"""NaimaNode: synced RGB + ToF depth in; super-resolved depth, CameraInfo and point cloud out.
ManagedNaimaNode: the same as a managed (lifecycle) node; both run `ros.phases.NodePhases`.

Topics (relative, remappable; depth_image_proc / REP 118 names; `naima_ros.contract.TOPICS` has
each one's type and QoS, docs/node.md the table):
  in   rgb/image_rect_color, rgb/camera_info, depth/image_rect, depth/camera_info (register_depth);
       <rgb>/compressed, <depth>/compressedDepth instead (rgb_transport, depth_transport)
  out  depth_registered/image_rect, depth_registered/image_rect_<encoding> (output_encodings),
       depth_registered/camera_info, depth_registered/points, /diagnostics

This package's ROS glue, by concern: the lifecycle phases that wire the node (`ros.phases`), the
parameter descriptors and callbacks (`ros.parameters`), the serving thread (`ros.worker`),
/diagnostics (`ros.status`, `ros.diagnostics`), the synchronizer (`ros.sync`), messages
(`ros.conversions`), topics' types and QoS (`ros.topics`), the depth -> RGB extrinsics from tf2
(`ros.tf`), and the rclpy differences between distros (`ros.compat`). What happens to a pair
(checks, drop reasons, the predictor call, the output arrays) is `naima_ros.serving`; the model and
its swaps `naima_ros.model_slot`; the parameter table and the topics `naima_ros.contract`.

Threading: `main()` spins one executor thread; the subscriptions only feed the synchronizer, whose
callback stores the newest matched pair, and one worker thread serves it and publishes.
Parameter services and the diagnostics timer use the default group.

Every output is stamped like the depth image (or the RGB image: `stamp_source`) and carries the RGB
image's frame_id (it lies on the RGB camera's grid, with its K and P). Every rejected pair is a
throttled warning and a counted drop by reason in /diagnostics; the node stays up and serves the
next good pair.
`method`, `scale`, `checkpoint`, `device` and `precision` may change at run time: the new model
is loaded and warmed up in the background and swapped in only on success; a failed load keeps the
old model, reverts the parameters and reports the reason.
"""
from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node

from naima_ros import runtime
from naima_ros.model_slot import ModelLoadError
from naima_ros.ros import phases
from naima_ros.ros.phases import NodePhases

__all__ = ["ManagedNaimaNode", "ModelLoadError", "NaimaNode", "lifecycle_main", "main"]


class NaimaNode(NodePhases, Node):
    """The depth super-resolution node; see the module docstring. It loads its model and starts
    serving in its constructor (`ManagedNaimaNode` is the lifecycle variant).

    Args:
        node_name: default node name (remappable with `__node`).
        predictor_factory: `factory(method, *, checkpoint, scale, device, precision)` ->
            predictor; default `naima_ros.predictors.load_predictor`.
        use_message_filters: force (True) or forbid (False) message_filters; None = if present.
        **kwargs: passed to `rclpy.node.Node` (e.g. `parameter_overrides`, `context`).

    Raises:
        ModelLoadError: the start-up model could not be loaded or warmed up.
    """

    def __init__(self, node_name: str = "naima", *, predictor_factory=None,
                 use_message_filters=None, **kwargs):
        super().__init__(node_name, **kwargs)
        self._setup(predictor_factory, use_message_filters)
        try:
            self._configure()
        except ModelLoadError:
            super().destroy_node()
            raise
        self._activate()


class ManagedNaimaNode(NodePhases, LifecycleNode):
    """The node as a managed (lifecycle) node: the same parameters, topics and serving, driven
    by the standard lifecycle services (`<node>/change_state`, `<node>/get_state`, e.g. from
    `ros2 lifecycle set` or a Nav2-style lifecycle manager).

    configure: load and warm up the model (a failure is a FAILURE transition and an ERROR status);
    activate: publishers, subscriptions and the worker; deactivate: stop serving (the frame in
    progress finishes); cleanup: release the model. /diagnostics is published in every state.
    Arguments as `NaimaNode`.
    """

    def __init__(self, node_name: str = "naima", *, predictor_factory=None,
                 use_message_filters=None, **kwargs):
        super().__init__(node_name, **kwargs)
        self._setup(predictor_factory, use_message_filters)

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ModelLoadError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        if self._state == "serving":
            self._deactivate()
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS


def main(args=None, node_class=None) -> int:
    """Entry point of `naima_node`: `naima_node --ros-args --params-file ... -r ...`.

    `node_class`: `NaimaNode` (default) or `ManagedNaimaNode` (`lifecycle_main`)."""
    phases.MALLOC_TUNING = runtime.tune_malloc()  # naima_ros.runtime: why, and what it sets
    rclpy.init(args=args)
    node = None
    try:
        node = (node_class or NaimaNode)()
        # one executor thread: the callbacks only store messages (the worker thread serves);
        # a MultiThreadedExecutor's hand-offs took 4x its CPU at 30 Hz (docs/performance.md,
        # "Serving at camera rate"), CPU and GIL time the forward pass needs
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except ModelLoadError as exc:
        rclpy.logging.get_logger("naima").fatal(str(exc))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:  # rclpy raises it for failed rcl calls and does not re-export it
        # Ctrl-C shut the context down between spin()'s ok() check and its next wait set (a race in rclpy's
        # executor, seen on Jazzy): a clean exit. Any other rcl failure is real.
        if node is None or node.context.ok():
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def lifecycle_main(args=None) -> int:
    """Entry point of `naima_lifecycle_node`: the managed node, unconfigured until told
    (`ros2 lifecycle set /naima configure`, then `activate`)."""
    return main(args, ManagedNaimaNode)


if __name__ == "__main__":
    sys.exit(main())
