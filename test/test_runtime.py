"""naima_ros.runtime: the allocator settings really reach glibc, the environment wins, torch gets
the thread count (also when it is imported afterwards). Each case runs in a fresh interpreter, so
this test process keeps its own allocator and threads."""
import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from naima_ros import runtime

needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

# mallinfo2().hblks counts the blocks glibc serves with mmap: a 64 MiB block is one by default
PROBE = textwrap.dedent("""
    import ctypes, json, sys
    from naima_ros import runtime
    libc = ctypes.CDLL(None)
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    report = runtime.tune_malloc() if sys.argv[1] == "tuned" else None
    before = libc.mallinfo2().hblks
    block = libc.malloc(64 << 20)
    mmapped = libc.mallinfo2().hblks - before
    libc.free(block)
    print(json.dumps({"report": report, "mmapped": mmapped}))
""")


def run(code, *args, env=None):
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=120, env=env or dict(os.environ))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "OMP_NUM_THREADS"}
    env.update(extra)
    return env


@needs_glibc
def test_tuned_malloc_keeps_large_blocks_in_the_heap():
    default = run(PROBE, "default", env=clean_env())
    tuned = run(PROBE, "tuned", env=clean_env())
    assert default["mmapped"] == 1  # glibc's default: a fresh mapping per large block
    assert tuned["mmapped"] == 0
    assert tuned["report"] == {name: str(value)
                               for name, (_, value, _) in runtime.MALLOC_SETTINGS.items()}


@needs_glibc
def test_environment_variables_win_over_the_tuning():
    result = run(PROBE, "tuned", env=clean_env(MALLOC_ARENA_MAX="4",
                                               MALLOC_MMAP_THRESHOLD_="1048576"))
    assert result["report"]["M_ARENA_MAX"] == "env 4"
    assert result["report"]["M_MMAP_THRESHOLD"] == "env 1048576"
    assert result["mmapped"] == 1  # the environment's 1 MiB threshold still maps 64 MiB blocks


@needs_glibc
def test_a_setting_glibc_refuses_is_reported():
    # M_MXFAST (1) above glibc's largest fastbin size is refused by mallopt
    report = runtime.tune_malloc({"M_MXFAST": (1, 1 << 20, "NAIMA_TEST_UNSET_VARIABLE")})
    assert report == {"M_MXFAST": "rejected"}


def test_thread_count_is_one_per_core_unless_asked():
    cores = len(os.sched_getaffinity(0))
    assert runtime.torch_thread_count(0) == cores
    assert runtime.torch_thread_count(3) == 3


def test_threads_reach_torch_imported_before_or_after():
    pytest.importorskip("torch")
    code = textwrap.dedent("""
        import json, sys
        from naima_ros import runtime
        if sys.argv[1] == "before":
            import torch
        set_to = runtime.set_torch_threads(int(sys.argv[2]))
        import torch
        print(json.dumps([set_to, torch.get_num_threads(), "torch" in sys.modules]))
    """)
    for when in ("before", "after"):
        assert run(code, when, "1", env=clean_env()) == [1, 1, True]
    auto = runtime.torch_thread_count(0)
    assert run(code, "after", "0", env=clean_env()) == [auto, auto, True]


def test_tune_process_reports_both():
    code = textwrap.dedent("""
        import json, sys
        from naima_ros import runtime
        print(json.dumps(runtime.tune_process(2, malloc=False)))
    """)
    assert run(code, env=clean_env()) == {"malloc": "off", "torch_threads": 2}


def test_omp_wait_policy_is_passive_unless_set():
    """Set when naima_ros is imported, before any entry point loads torch (libgomp); the environment wins."""
    code = textwrap.dedent("""
        import json, os
        import naima_ros.eval.run  # an entry point's module: it imports torch
        print(json.dumps(os.environ.get("OMP_WAIT_POLICY")))
    """)
    env = {k: v for k, v in clean_env().items() if k != "OMP_WAIT_POLICY"}
    assert run(code, env=env) == "PASSIVE"
    assert run(code, env=dict(env, OMP_WAIT_POLICY="ACTIVE")) == "ACTIVE"
