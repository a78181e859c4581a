"""A small ROS 1 .bag like a public RGB-D recording with an unregistered ToF, written with rosbags'
rosbag1 writer and ROS 1 (Noetic) message definitions: Header with seq, CameraInfo's D/K/R/P.

The scene is a wall 2 m in front of the ToF (16 x 12 px, wide field of view); the RGB camera
(64 x 48, its P not its K) sits 5 cm to the ToF's right, so the depth registered onto the RGB grid
is 2 m wherever it lands, and the ground truth on the RGB grid is 2 m everywhere.
"""
import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

TYPESTORE = get_typestore(Stores.ROS1_NOETIC)
TYPESTORE.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                      "tf2_msgs/msg/TFMessage"))
T = TYPESTORE.types

RGB_W, RGB_H, SCALE = 64, 48, 8
TOF_W, TOF_H = 16, 12
RGB_K = [50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0]
RGB_P = [45.0, 0.0, 33.5, 0.0, 0.0, 45.0, 22.5, 0.0, 0.0, 0.0, 1.0, 0.0]
TOF_K = [10.0, 0.0, 7.5, 0.0, 10.0, 5.5, 0.0, 0.0, 1.0]
TOF_TO_RGB = (0.05, 0.0, 0.0)  # p_rgb = p_tof + t: the ToF is 5 cm left of the RGB camera
WALL_M = 2.0
TOPICS = {"rgb": "/camera/rgb/image_color", "rgb_info": "/camera/rgb/camera_info",
          "depth": "/camera/depth/image", "depth_info": "/camera/depth/camera_info",
          "gt": "/camera/depth_gt/image", "tf_static": "/tf_static"}
FRAMES = 3
T0_NS, PERIOD_NS = 1_000_000_000, 100_000_000


def header(seq, stamp_ns, frame_id):
    sec, nanosec = divmod(stamp_ns, 10**9)
    return T["std_msgs/msg/Header"](seq=seq, stamp=T["builtin_interfaces/msg/Time"](
        sec=sec, nanosec=nanosec), frame_id=frame_id)


def image(hdr, pixels, encoding):
    h, w = pixels.shape[:2]
    return T["sensor_msgs/msg/Image"](header=hdr, height=h, width=w, encoding=encoding,
                                      is_bigendian=0, step=pixels.nbytes // h,
                                      data=np.frombuffer(pixels.tobytes(), np.uint8))


def camera_info(hdr, w, h, k, p):
    return T["sensor_msgs/msg/CameraInfo"](
        header=hdr, height=h, width=w, distortion_model="plumb_bob", D=np.zeros(5),
        K=np.array(k), R=np.eye(3).ravel(), P=np.array(p), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def tf_static(stamp_ns):
    vec = T["geometry_msgs/msg/Vector3"](x=TOF_TO_RGB[0], y=TOF_TO_RGB[1], z=TOF_TO_RGB[2])
    rot = T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
    stamped = T["geometry_msgs/msg/TransformStamped"](
        header=header(0, stamp_ns, "camera_rgb_optical_frame"),
        child_frame_id="camera_depth_optical_frame",
        transform=T["geometry_msgs/msg/Transform"](translation=vec, rotation=rot))
    return T["tf2_msgs/msg/TFMessage"](transforms=[stamped])


def write_ros1_bag(path):
    """Write the bag at `path`; returns {role: [stamp ns, ...]} of what it holds."""
    rng = np.random.default_rng(7)
    tof_p = TOF_K[:3] + [0.0] + TOF_K[3:6] + [0.0] + TOF_K[6:] + [0.0]
    stamps = [T0_NS + i * PERIOD_NS for i in range(FRAMES)]
    with Writer(path) as w:
        conns = {role: w.add_connection(topic, msgtype, typestore=TYPESTORE,
                                        latching=int(role in ("depth_info", "tf_static")))
                 for role, (topic, msgtype) in {
                     "rgb": (TOPICS["rgb"], "sensor_msgs/msg/Image"),
                     "rgb_info": (TOPICS["rgb_info"], "sensor_msgs/msg/CameraInfo"),
                     "depth": (TOPICS["depth"], "sensor_msgs/msg/Image"),
                     "depth_info": (TOPICS["depth_info"], "sensor_msgs/msg/CameraInfo"),
                     "gt": (TOPICS["gt"], "sensor_msgs/msg/Image"),
                     "tf_static": (TOPICS["tf_static"], "tf2_msgs/msg/TFMessage")}.items()}

        def write(role, msg, log_ns):
            w.write(conns[role], log_ns, TYPESTORE.serialize_ros1(msg, msg.__msgtype__))

        # latched once at the start, as a calibration publisher would
        write("tf_static", tf_static(T0_NS - PERIOD_NS), T0_NS - PERIOD_NS)
        write("depth_info", camera_info(header(0, T0_NS - PERIOD_NS, "camera_depth_optical_frame"),
                                        TOF_W, TOF_H, TOF_K, tof_p), T0_NS - PERIOD_NS + 1)
        for seq, stamp in enumerate(stamps):
            log = stamp + 5_000_000
            rgb_hdr = header(seq, stamp, "camera_rgb_optical_frame")
            write("rgb_info", camera_info(rgb_hdr, RGB_W, RGB_H, RGB_K, RGB_P), log)
            write("rgb", image(rgb_hdr, rng.integers(0, 256, (RGB_H, RGB_W, 3), np.uint8),
                               "rgb8"), log + 1)
            write("depth", image(header(seq, stamp, "camera_depth_optical_frame"),
                                 np.full((TOF_H, TOF_W), WALL_M, "<f4"), "32FC1"), log + 2)
            write("gt", image(rgb_hdr, np.full((RGB_H, RGB_W), WALL_M, "<f4"), "32FC1"),
                  log + 3)
    return stamps
