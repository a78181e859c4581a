"""The node at camera rate: served fps and latency against the model alone (not a test).

Per run, as on a robot, three processes: a camera (RGB bgr8 W x H + depth 16UC1 W/8 x H/8 +
CameraInfo at `--rates` Hz, SensorDataQoS), the node (`python -m naima_ros.ros.node`, with
config/fastdds_large_data.xml as FASTDDS_DEFAULT_PROFILES_FILE), and a subscriber counting the
depth images and clouds it receives (serialised, `raw=True`: only the header stamp is read) and
their latency (arrival wall time - camera stamp). Before and after each node run the model alone is
timed in a fresh process of its own (the same predictor, the same frames, the node's runtime
tuning): `model-alone fps` is the mean of the two medians, so both sides of the ratio see the
same machine load.

Reported per run: pairs sent, pairs the node received, frames served (the subscriber's count), the
served fps over the camera window, served fps / model-alone fps, latency p50/p95 and p95 /
model-alone time, the node's drops by reason and the load average. `--pyspy S` also records the
node with py-spy for S seconds mid-run (every thread, busy samples only) and writes the raw
stacks next to the JSON and a summary (per thread: busy share, top frames) into it.

Usage:
  .venv/bin/python bench/bench_camera_rate.py --rates 15,30,60 --sizes 640x480,1280x720
  .venv/bin/python bench/bench_camera_rate.py --method bicubic --rates 30     # cloud on (default)
  .venv/bin/python bench/bench_camera_rate.py --rates 30 --pyspy 20 --tag executor_before
  add `-p NAME:=VALUE` style node parameters with --node-param NAME:=VALUE (repeatable).
Writes bench/results/camera_rate_<date>_<tag>.json (and camera_rate_<date>_<tag>_pyspy_*.txt);
  .venv/bin/python bench/bench_camera_rate.py show bench/results/camera_rate_*.json
prints the runs and their profiles (per thread: busy share, top frames).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from camera_graph import SCALE, Proc, camera_frames, node_command  # bench/ is sys.path[0] when run as a script

REPO = Path(__file__).resolve().parents[1]
CAMERA = str(Path(__file__).resolve().parent / "camera_graph.py")
PROFILE = REPO / "config" / "fastdds_large_data.xml"
OUTPUTS = ("depth_registered/image_rect", "depth_registered/points")
START_TIMEOUT_S = 300.0
PYSPY_RATE = 100  # samples per second
DEFAULT_TORCH_THREADS = 0  # the node parameter's default (naima_ros.contract.PARAMETERS)


# ---------------------------------------------------------------- camera process
# ---------------------------------------------------------------- subscriber process
def subscriber(stop_file: str) -> None:
    """Reliable subscriptions to the outputs: distinct stamps and arrival latency per output."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    rclpy.init()
    node = rclpy.create_node("bench_camera_rate_subscriber")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    latency: dict[str, dict] = {topic: {} for topic in OUTPUTS}
    lock = threading.Lock()

    def counter(topic):
        def callback(raw: bytes):
            now = time.time()
            sec, nsec = struct.unpack_from("<iI", raw, 4)  # CDR header, then the header stamp
            with lock:
                latency[topic].setdefault((sec, nsec), now - (sec + nsec * 1e-9))
        return callback

    for topic, kind in zip(OUTPUTS, (Image, PointCloud2)):
        node.create_subscription(kind, topic, counter(topic), qos, raw=True)
    last_status: dict = {}

    def diagnostics_callback(msg):
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "pairs_received" in values:
                last_status.clear()
                last_status.update(values)

    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics_callback, 10)
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spinner.start()
    while not all(node.count_publishers(t) for t in OUTPUTS):
        time.sleep(0.05)
    print(json.dumps({"ready": True}), flush=True)
    while not os.path.exists(stop_file):
        time.sleep(0.1)
    with lock:
        out = {topic: sorted(d.items()) for topic, d in latency.items()}
    print(json.dumps({"outputs": {t: [[s[0], s[1], lat] for s, lat in v]
                                  for t, v in out.items()},
                      "diagnostics": last_status}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


# ---------------------------------------------------------------- the model alone
def model_alone(width: int, height: int, method: str, checkpoint: str, runs: int,
                threads: int) -> None:
    """Median seconds of the predictor on the camera's frame, as the node loads and calls it."""
    import numpy as np

    from naima_ros import runtime
    from naima_ros.model_slot import ModelSlot, ModelSpec
    from naima_ros.contract import DEFAULTS

    assert DEFAULTS["torch_threads"] == DEFAULT_TORCH_THREADS
    tuning = runtime.tune_process(threads)
    spec = ModelSpec(method, checkpoint or DEFAULTS["checkpoint"], SCALE, "cpu", "auto")
    predictor = ModelSlot(log_info=lambda m: None).load(spec, (1, height, width)).predictor
    rgb, depth_mm, _ = camera_frames(width, height)
    depth_m = depth_mm.astype(np.float32) * np.float32(0.001)
    times = []

    def serve():
        for _ in range(runs):
            t0 = time.perf_counter()
            predictor(rgb, depth_m)
            times.append(time.perf_counter() - t0)

    # as the node: warmed up on the main thread, served from another one (with libgomp's default
    # spin-waiting the thread that first ran torch was 17x slower; naima_ros/__init__.py now
    # makes OMP_WAIT_POLICY PASSIVE, docs/performance.md, "Serving at camera rate")
    worker = threading.Thread(target=serve, name="model_alone")
    worker.start()
    worker.join()
    print(json.dumps({"model_s": statistics.median(times), "times_s": times,
                      "tuning": tuning}), flush=True)


# ---------------------------------------------------------------- py-spy summary
def summarise_pyspy(raw_file: Path, seconds: float, top: int = 25) -> dict:
    """Top frames of a py-spy `--format raw` (collapsed stacks) file recorded for `seconds` at
    PYSPY_RATE without `--idle`: per thread the share of the time it was busy (on a CPU or
    runnable, not waiting), and its frames with the most self and inclusive samples."""
    threads: collections.Counter = collections.Counter()
    self_ = collections.defaultdict(collections.Counter)
    inclusive = collections.defaultdict(collections.Counter)
    for line in raw_file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        n = int(count)
        threads[thread] += n
        if frames:
            self_[thread][frames[-1]] += n
        for frame in set(frames):
            inclusive[thread][frame] += n
    total = sum(threads.values()) or 1
    return {"samples": total, "seconds": seconds,
            "threads": {t: {"busy": n / (seconds * PYSPY_RATE),
                            "top_self": [(f, c / n) for f, c in self_[t].most_common(top)],
                            "top_inclusive": [(f, c / n)
                                              for f, c in inclusive[t].most_common(top)]}
                        for t, n in threads.most_common()}}


def show(files: list[str], top: int = 8) -> None:
    """Print each run of result files with its profile: per thread the busy share, top frames."""
    for name in files:
        for run in json.loads(Path(name).read_text())["runs"]:
            print(f"== {Path(name).name}: {describe(run)}")
            threads = run.get("pyspy", {}).get("summary", {}).get("threads", {})
            for thread, d in threads.items():
                print(f"  {thread}: busy {d['busy']:.2f} of the wall time")
                for frame, share in d["top_self"][:top]:
                    print(f"    {share:6.1%} self  {frame}")
                for frame, share in d["top_inclusive"][:top + 4]:  # the first are the thread's own frames
                    print(f"    {share:6.1%} incl  {frame}")


def pyspy(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--duration",
                             str(int(seconds)), "--rate", str(PYSPY_RATE), "--threads",
                             "--nonblocking", "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


# ---------------------------------------------------------------- orchestration
def cpu_and_faults(pid: int) -> tuple[float, int]:
    """(user + system CPU seconds, minor page faults) of a process so far, all its threads."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK"), int(fields_[7])


def time_model(env, me, width, height, args) -> float:
    # the node's torch_threads (a --node-param, else the parameter's default)
    threads = DEFAULT_TORCH_THREADS
    for extra in args.node_param:
        name, _, value = extra.partition(":=")
        threads = int(value) if name == "torch_threads" else threads
    proc = Proc([sys.executable, me, "model", str(width), str(height), args.method,
                 args.checkpoint, str(args.model_runs), str(threads)], env)
    result = json.loads(proc.wait_for('"model_s"', START_TIMEOUT_S))
    proc.stop()
    return result["model_s"]


def results_stem(tag: str) -> str:
    """`camera_rate_<date>_<tag>`: the name of a run's files in bench/results (its README)."""
    return f"camera_rate_{datetime.date.today().isoformat()}_{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}"


def run_once(width: int, height: int, rate_hz: float, args, domain_id: int, tmp: Path,
             tag: str) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1", FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))
    me = str(Path(__file__).resolve())
    go, stop = tmp / f"go_{domain_id}", tmp / f"stop_{domain_id}"
    model_before = time_model(env, me, width, height, args) if args.model_runs else None
    node_cmd = node_command(args.method, args.checkpoint, width, height, "warn_throttle:=60.0",
                            *args.node_param)
    # an older tree for the node: first on sys.path (`-m` puts the working directory first)
    node = Proc(node_cmd, env, cwd=args.node_pythonpath or None)
    sub = cam = spy = None
    profile = None
    try:
        node.wait_for("ready", START_TIMEOUT_S)
        sub_env = dict(env)
        if args.subscriber_malloc == "tuned":  # the node's glibc settings, as environment variables
            from naima_ros.runtime import MALLOC_SETTINGS
            sub_env.update({var: str(value) for _, value, var in MALLOC_SETTINGS.values()})
        sub = Proc([sys.executable, me, "subscriber", str(stop)], sub_env)
        sub.wait_for('"ready"', START_TIMEOUT_S)
        cam = Proc([sys.executable, CAMERA, "camera", str(width), str(height), str(rate_hz),
                    str(args.duration), str(go)], env)
        procs = {"node": node, "camera": cam, "subscriber": sub}
        cpu_start = {name: cpu_and_faults(p.proc.pid) for name, p in procs.items()}
        t_start = time.monotonic()
        go.touch()
        load_start = os.getloadavg()[0]
        if args.pyspy:
            time.sleep(min(5.0, args.duration / 4))
            raw = Path(args.out) / f"{results_stem(tag)}_pyspy_{width}x{height}_{rate_hz:g}hz.txt"
            spy = pyspy(node.proc.pid, args.pyspy, raw)
        camera_out = json.loads(cam.wait_for('"sent"', START_TIMEOUT_S + args.duration * 3))
        # cores each process used while the camera ran (the camera's start-up included)
        elapsed = time.monotonic() - t_start
        cores, faults = {}, {}
        for name, p in procs.items():  # an exited, unreaped camera still has its /proc entry
            try:
                cpu_s, minflt = cpu_and_faults(p.proc.pid)
            except (OSError, IndexError):
                continue
            cores[name] = (cpu_s - cpu_start[name][0]) / elapsed
            faults[name] = (minflt - cpu_start[name][1]) / elapsed
        if spy is not None:
            spy.wait(60)
            profile = summarise_pyspy(raw, int(args.pyspy))
        time.sleep(3.0)  # the last frame in flight, and one more /diagnostics period
        stop.touch()
        result = json.loads(sub.wait_for('"outputs"', 60))
        load_end = os.getloadavg()[0]
    finally:
        for proc in (cam, sub, node):
            if proc is not None:
                proc.stop()
    model_after = time_model(env, me, width, height, args) if args.model_runs else None
    import numpy as np
    images = result["outputs"][OUTPUTS[0]]
    clouds = result["outputs"][OUTPUTS[1]]
    lat_ms = np.array([lat for _, _, lat in images]) * 1e3
    window = camera_out["window_s"]
    served_fps = len(images) / window
    diag = result["diagnostics"]
    run = {
        "size": f"{width}x{height}", "rate_hz": rate_hz, "method": args.method,
        "node_params": args.node_param, "window_s": window, "pairs_sent": camera_out["sent"],
        "pairs_received_by_node": int(diag.get("pairs_received", -1)),
        # published by the node vs received by the subscriber: who lost the frames that were not served
        "frames_published_by_node": int(diag.get("frames_published", -1)),
        "events": {k[len("events."):]: int(v) for k, v in diag.items() if k.startswith("events.")},
        "images_received": len(images), "clouds_received": len(clouds),
        "served_fps": served_fps,
        "latency_p50_ms": float(np.percentile(lat_ms, 50)) if lat_ms.size else None,
        "latency_p95_ms": float(np.percentile(lat_ms, 95)) if lat_ms.size else None,
        "node_model_p50_ms": float(diag.get("model_p50_ms", "nan")),
        "dropped": {k: int(v) for k, v in diag.items() if k.startswith("dropped.")},
        "loadavg_1min": [load_start, load_end],
        "cores_used": cores,
        "minor_faults_per_s": faults,
        "subscriber_malloc": args.subscriber_malloc,
    }
    if model_before is not None:
        model_s = (model_before + model_after) / 2
        run.update(model_alone_ms=[model_before * 1e3, model_after * 1e3],
                   model_alone_fps=1.0 / model_s,
                   fps_ratio=served_fps * model_s,
                   p95_over_model=(run["latency_p95_ms"] / (model_s * 1e3)
                                   if lat_ms.size else None))
    if profile is not None:
        run["pyspy"] = {"raw": str(raw.relative_to(REPO)), "summary": profile}
    return run


def describe(run: dict) -> str:
    text = (f"{run['method']} {run['size']} @ {run['rate_hz']:g} Hz: sent {run['pairs_sent']}, "
            f"node got {run['pairs_received_by_node']}, published "
            f"{run.get('frames_published_by_node', '?')}, served {run['images_received']} "
            f"({run['served_fps']:.2f} fps, clouds {run['clouds_received']})")
    if "model_alone_fps" in run:
        text += (f"; model alone {run['model_alone_fps']:.2f} fps -> ratio "
                 f"{run['fps_ratio']:.2f}")
    if run["latency_p95_ms"] is not None:
        text += f"; latency p50 {run['latency_p50_ms']:.0f} p95 {run['latency_p95_ms']:.0f} ms"
    if run.get("p95_over_model") is not None:
        text += f" ({run['p95_over_model']:.2f} x model)"
    text += (f"; node model p50 {run['node_model_p50_ms']:.0f} ms; load "
             f"{run['loadavg_1min'][0]:.1f}/{run['loadavg_1min'][1]:.1f}")
    if run.get("subscriber_malloc") == "tuned":
        text += "; subscriber malloc tuned"
    if run.get("cores_used"):
        text += "; cores " + ", ".join(f"{k} {v:.2f}" for k, v in run["cores_used"].items())
    if run.get("minor_faults_per_s"):
        text += "; faults/s " + ", ".join(f"{k} {v:.0f}" for k, v in run["minor_faults_per_s"].items())
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="camera seconds per run")
    parser.add_argument("--rates", default="30", help="camera rates (Hz), comma-separated")
    parser.add_argument("--sizes", default="640x480", help="RGB (= output) sizes")
    parser.add_argument("--method", default="naima", help="node `method` parameter")
    parser.add_argument("--checkpoint", default="", help="node `checkpoint` (method naima)")
    parser.add_argument("--model-runs", type=int, default=5,
                        help="timed predictor calls before and after each run (0: skip)")
    parser.add_argument("--node-param", action="append", default=[],
                        help="extra node parameter NAME:=VALUE")
    parser.add_argument("--node-pythonpath", default="",
                        help="run the node from this directory (e.g. `git archive` of an older "
                             "naima_ros with its checkpoints), to measure before/after alike")
    parser.add_argument("--subscriber-malloc", choices=("default", "tuned"), default="default",
                        help="glibc malloc of the subscriber: stock, or the node's settings (naima_ros.runtime; "
                             "each 9.8 MB cloud it takes is a fresh, page-faulted block otherwise)")
    parser.add_argument("--pyspy", type=float, default=0.0, help="py-spy seconds (0: off)")
    parser.add_argument("--tag", default="run", help="what the run is, in the results file's name "
                        "(bench/results/README.md: camera_rate_<date>_<tag>.json)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    if args.method != "naima":
        args.model_runs = max(args.model_runs, 20)
    runs = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_camera_rate_{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    domain = 100 + os.getpid() % 50
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        for rate in args.rates.split(","):
            domain += 1
            run = run_once(width, height, float(rate), args, domain, tmp, args.tag)
            runs.append(run)
            print(describe(run), flush=True)
    out = Path(args.out) / f"{results_stem(args.tag)}.json"
    out.write_text(json.dumps({"command": " ".join(sys.argv), "cpu_count": os.cpu_count(),
                               "runs": runs}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "subscriber":
        subscriber(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "show":
        show(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "model":
        model_alone(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5],
                    int(sys.argv[6]), int(sys.argv[7]))
    else:
        main()
