"""Process tuning for serving frames, ROS-free: glibc's allocator and torch's thread count.

The node applies `tune_process` at start-up, before the model is loaded (and
`bench/bench_camera_rate.py` applies it to the model alone, so both are compared alike).

- **Allocator** (glibc `mallopt` through ctypes; nothing happens on another libc). By default
  glibc serves every block above its dynamic mmap threshold (at most 32 MiB) with a fresh `mmap`
  and returns it on `free`, so each forward pass faults its large activations back in page by
  page; and it trims the heap top on every free. Raising `M_MMAP_THRESHOLD`, `M_TRIM_THRESHOLD`
  and `M_TOP_PAD` keeps that memory in the heap for the next frame (bench/bench_model.py
  measured the model 10-20 % faster). `M_ARENA_MAX` 1 keeps every thread on the main heap: the
  node's few threads rarely allocate at the same time, and arenas of threads that come and go
  (a model swap loads on a fresh thread) no longer pile up resident memory. A setting whose
  `MALLOC_*_` environment variable is set is left to it: the user's environment wins.
- **torch threads**: the intra-op pool (parameter `torch_threads`); 0 means one per core. Chosen
  with the executor's share in mind, by measurement (docs/performance.md, "Serving at camera rate"): with the
  node's single raw-subscription executor using about a tenth of a core at 30 Hz, a forward pass
  inside the node took ~1.1 s with 2 threads and ~2 s with 1 on the 2 shared cores; leaving a
  core to the executor only paid off while it was a MultiThreadedExecutor.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["MALLOC_SETTINGS", "set_torch_threads", "torch_thread_count", "tune_malloc",
           "tune_process"]

# name: (mallopt parameter number from glibc's malloc.h, value, environment variable that wins)
MALLOC_SETTINGS = {
    "M_MMAP_THRESHOLD": (-3, 1 << 30, "MALLOC_MMAP_THRESHOLD_"),  # blocks below 1 GiB: heap
    "M_TRIM_THRESHOLD": (-1, 1 << 30, "MALLOC_TRIM_THRESHOLD_"),  # keep up to 1 GiB free on top
    "M_TOP_PAD": (-2, 256 << 20, "MALLOC_TOP_PAD_"),  # grow the heap 256 MiB at a time
    "M_ARENA_MAX": (-8, 1, "MALLOC_ARENA_MAX"),  # one heap for every thread
}


def _glibc():
    """The process's C library if it is glibc, else None."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def tune_malloc(settings: dict | None = None) -> dict[str, str]:
    """Apply glibc allocator settings to this process.

    Args:
        settings: {name: (mallopt number, value, environment variable)}; default MALLOC_SETTINGS.

    Returns:
        {name: what happened}: the value set, `env <value>` where the environment variable
        decides, `rejected` where mallopt refused, or {"libc": "not glibc"}.
    """
    libc = _glibc()
    if libc is None:
        return {"libc": "not glibc"}
    report = {}
    for name, (param, value, env) in (settings or MALLOC_SETTINGS).items():
        if os.environ.get(env):
            report[name] = f"env {os.environ[env]}"
        elif libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
            report[name] = str(value)
        else:
            report[name] = "rejected"
    return report


def torch_thread_count(requested: int = 0) -> int:
    """`requested`, or for 0 one thread per usable core (torch's own default)."""
    if requested > 0:
        return int(requested)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def set_torch_threads(requested: int = 0) -> int:
    """Set torch's intra-op thread count (`torch_thread_count`); returns it.

    Where torch is not imported yet (a baseline never imports it) the count goes to
    OMP_NUM_THREADS, which torch reads when it is imported (OMP_WAIT_POLICY: naima_ros/__init__.py).
    """
    threads = torch_thread_count(requested)
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    else:
        torch.set_num_threads(threads)
    return threads


def tune_process(torch_threads: int = 0, malloc: bool = True) -> dict:
    """The node's start-up tuning: allocator first (before the model allocates), then threads.

    Returns:
        {"malloc": tune_malloc's report or "off", "torch_threads": the count}, for the log.
    """
    return {"malloc": tune_malloc() if malloc else "off",
            "torch_threads": set_torch_threads(torch_threads)}
