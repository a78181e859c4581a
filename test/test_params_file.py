"""naima_ros.params_file: which parameters a ROS 2 params file gives one node (ROS-free)."""
import pytest

from naima_ros.params_file import flatten, node_parameters

FILE = """
/**:
  ros__parameters:
    register_depth: false
    diagnostic_updater:
      period: 2.0
front:
  naima:
    ros__parameters:
      register_depth: true
/**/naima:
  ros__parameters:
    scale: 16
/*/other:
  ros__parameters:
    scale: 4
/back/naima:
  ros__parameters: {}
"""


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(FILE)
    return path


def test_flatten_nests_dotted_names():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2],
                                                                       "e": "x"}


@pytest.mark.parametrize("namespace,name,expected", [
    # /** first, then the namespaced entry (nested keys), then /**/naima: file order
    ("/front", "naima", {"register_depth": True, "diagnostic_updater.period": 2.0, "scale": 16}),
    ("/", "naima", {"register_depth": False, "diagnostic_updater.period": 2.0, "scale": 16}),
    ("/back", "naima", {"register_depth": False, "diagnostic_updater.period": 2.0, "scale": 16}),
    ("/a/b", "other", {"register_depth": False, "diagnostic_updater.period": 2.0}),  # * is one token
    ("/a", "other", {"register_depth": False, "diagnostic_updater.period": 2.0, "scale": 4}),
])
def test_node_parameters_match_names_and_wildcards(params, namespace, name, expected):
    assert node_parameters(params, name, namespace) == expected


def test_an_empty_file_gives_nothing(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert node_parameters(tmp_path / "empty.yaml", "naima") == {}
