"""naima_ros: NAIMA RGB-guided depth super-resolution.

Everything outside ``naima_ros.ros`` imports without rclpy (a GPU training box has no ROS).
"""

import os

__version__ = "0.1.0"

# libgomp reads OMP_WAIT_POLICY once, when torch loads it, so it is set here, before any entry point (node,
# naima-eval, naima-bag, naima-train, demo) imports torch. With the default spin-waiting, forward passes on the
# thread that first ran torch took 14 s instead of 0.8 s (light x8, 640x480, 2 threads, idle or shared cores);
# PASSIVE made them 0.8 s (docs/performance.md, "Serving at camera rate"). A value in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
