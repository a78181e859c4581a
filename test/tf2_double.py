"""A tf2_ros double of the real API shape, for the tests of the TF paths (tf2_ros is an apt
package, not installable here).

`Buffer` keeps a tree of `geometry_msgs/TransformStamped` (parent = header.frame_id, child =
child_frame_id), static or stamped, and answers `lookup_transform(target_frame, source_frame, time,
timeout)` with the transform that maps source points into the target frame, raising tf2's
`LookupException`, `ConnectivityException` and `ExtrapolationException` (all `TransformException`s)
where tf2 does; `TransformListener(buffer, node)` records what it was given (the double subscribes
to nothing: a test fills the buffer as /tf_static would).
"""
import types

import numpy as np
from geometry_msgs.msg import TransformStamped
from scipy.spatial.transform import Rotation


def make_tf2_double():
    module = types.ModuleType("tf2_ros")

    class TransformException(Exception):
        pass

    class LookupException(TransformException):
        pass

    class ConnectivityException(TransformException):
        pass

    class ExtrapolationException(TransformException):
        pass

    class Buffer:
        def __init__(self, cache_time=None, node=None):
            self.edges = {}  # child -> (parent, 4x4 T_parent<-child, stamps ns or None: static)
            self.calls = []

        def _set(self, msg, stamps):
            m = np.eye(4)
            q, t = msg.transform.rotation, msg.transform.translation
            m[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
            m[:3, 3] = [t.x, t.y, t.z]
            self.edges[msg.child_frame_id] = (msg.header.frame_id, m, stamps)

        def set_transform_static(self, msg, authority):
            self._set(msg, None)

        def set_transform(self, msg, authority):
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            old = self.edges.get(msg.child_frame_id)
            self._set(msg, (old[2] if old else []) + [stamp])

        def _to_root(self, frame, arg, stamp):
            known = set(self.edges) | {p for p, _, _ in self.edges.values()}
            if frame not in known:
                raise LookupException(f'"{frame}" passed to lookupTransform argument {arg} '
                                      f'does not exist. ')
            m = np.eye(4)
            while frame in self.edges:
                parent, edge, stamps = self.edges[frame]
                if stamps is not None and stamp and not min(stamps) <= stamp <= max(stamps):
                    raise ExtrapolationException(
                        f"Lookup would require extrapolation into the future. Requested time "
                        f"{stamp / 1e9} but the latest data is at time {max(stamps) / 1e9}, when "
                        f"looking up transform from frame [{frame}] to frame [{parent}]")
                m, frame = edge @ m, parent
            return frame, m

        def lookup_transform(self, target_frame, source_frame, time, timeout=None):
            self.calls.append((target_frame, source_frame, time, timeout))
            stamp = time.nanoseconds
            root_s, root_from_source = self._to_root(source_frame, "source_frame", stamp)
            root_t, root_from_target = self._to_root(target_frame, "target_frame", stamp)
            if root_s != root_t:
                raise ConnectivityException(
                    f"Could not find a connection between '{target_frame}' and "
                    f"'{source_frame}' because they are not part of the same tree.Tf has two "
                    f"or more unconnected trees.")
            m = np.linalg.inv(root_from_target) @ root_from_source
            out = TransformStamped()
            out.header.frame_id, out.child_frame_id = target_frame, source_frame
            sec, out.header.stamp.nanosec = divmod(stamp, 10**9)
            out.header.stamp.sec = sec
            t, q = out.transform.translation, out.transform.rotation
            t.x, t.y, t.z = (float(v) for v in m[:3, 3])
            q.x, q.y, q.z, q.w = (float(v) for v in Rotation.from_matrix(m[:3, :3]).as_quat())
            return out

    class TransformListener:
        instances = []

        def __init__(self, buffer, node, *, spin_thread=False, qos=None, static_qos=None):
            self.buffer, self.node = buffer, node
            TransformListener.instances.append(self)

    for cls in (TransformException, LookupException, ConnectivityException,
                ExtrapolationException, Buffer, TransformListener):
        setattr(module, cls.__name__, cls)
    return module


def transform(parent, child, xyz, rotvec=(0.0, 0.0, 0.0), stamp_ns=0):
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    q = Rotation.from_rotvec(rotvec).as_quat()
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = (float(v) for v in q)
    return msg
