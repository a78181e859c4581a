"""naima_ros: NAIMA RGB-guided depth super-resolution.

Everything outside ``naima_ros.ros`` imports without rclpy (a GPU training box has no ROS).
"""

__version__ = "0.1.0"
