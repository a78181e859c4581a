"""Import structure (issue 8): no cycle anywhere in naima_ros/ (imports inside functions too), and the
serving path imports without rclpy or torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "naima_ros"


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # every import statement, at any depth
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("naima_ros"):
                # ``from package import submodule`` runs the package's __init__ too: count both
                deps |= {node.module} | {f"{node.module}.{a.name}" for a in node.names
                                         if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("naima_ros")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "naima_ros.checkpoint" in graph and "naima_ros.model.naima" in graph["naima_ros.checkpoint"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_a_function_level_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def reachable(graph: dict[str, set[str]], roots) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_the_runtime_does_not_depend_on_evaluation():
    """The node and everything it may load (a network or a baseline) never import naima_ros.eval."""
    graph = import_graph()
    runtime = reachable(graph, ["naima_ros.ros.node", "naima_ros.bags.run"])
    assert {"naima_ros.predictors", "naima_ros.baselines", "naima_ros.inference"} <= runtime
    assert sorted(m for m in runtime if m.startswith("naima_ros.eval")) == []


# The serving path a robot without torch (baseline methods) or without ROS (naima-bag) runs.
ROS_AND_TORCH_FREE = ("naima_ros.serving", "naima_ros.contract", "naima_ros.drops",
                      "naima_ros.baselines", "naima_ros.image_transport", "naima_ros.registration",
                      "naima_ros.frames", "naima_ros.predictors", "naima_ros.depth_codec",
                      "naima_ros.geometry", "naima_ros.resample", "naima_ros.model_slot",
                      "naima_ros.resources", "naima_ros.runtime")


@pytest.mark.parametrize("module", ROS_AND_TORCH_FREE)
def test_imports_without_rclpy_or_torch(module):
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('rclpy', 'torch'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            f"import {module}\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
