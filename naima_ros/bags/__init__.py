"""Rosbag replay evaluation for the depth node (`naima-bag`), over `rosbags`, no ROS install.

One module per concept:
  io.py        topics, reading (errors naming file and topic), writing (rosbag2 v8, always
               finalised), message <-> array helpers over `naima_ros.depth_codec`
  make.py      `make`: sensor-like bags from datasets or procedural sequences
  run.py       `run`: the node's per-pair work offline, no DDS
  replay.py    `replay`: the node over real DDS (the only module that needs rclpy)
  evaluate.py  `eval`: scores vs ground truth, baselines, latency, drops
  report.py    markdown, CSV and PNG plots
  cli.py       the `naima-bag` console script
"""
