"""naima_ros.contract, the node's one table of parameters and topics: its validation, its internal
consistency, and every copy of it (config/naima.yaml, docs/node.md) and every hard-coded topic name
that would drift from it. ROS-free, except the descriptor and QoS checks (skipped without rclpy)."""
import ast
from pathlib import Path

import pytest

from naima_ros import contract
from naima_ros.contract import (DEFAULTS, OUTPUT_NAMESPACE, PARAMETERS, QOS_ROLES, TOPICS,
                                check_parameters, markdown_tables, parameter)
from naima_ros.options import BASELINE_METHODS, SCALES
from naima_ros.params_file import node_parameters

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("new,reason", [
    ({"scale": 12}, "scale must be one of"),
    ({"device": "gpu"}, "device must be"),
    ({"method": "nearest"}, "method must be one of"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"max_depth": 0.05}, "min_depth (0.1) must be below max_depth (0.05)"),
    ({"method": "bicubic", "device": "cuda:1", "scale": 16}, None),
    ({"output_encodings": ["16UC1", "mono8"]}, "each item of output_encodings must be one of "
     "32FC1, 16UC1, got 'mono8'"),
    ({"output_encodings": ["32FC1", "16UC1"], "stamp_source": "rgb"}, None),
    ({"stamp_source": "header"}, "stamp_source must be one of depth, rgb"),
    ({"expected_rate_min": 10.0, "expected_rate_max": 5.0}, "expected_rate_max (5.0) must be 0 "
     "(no bound) or at least expected_rate_min (10.0)"),
    ({"expected_rate_min": 10.0}, None),  # max 0: no upper bound
])
def test_check_parameters(new, reason):
    got = check_parameters(new, DEFAULTS)
    assert got == reason if reason is None else reason in got


def test_renamed_parameters_point_at_the_table():
    """An old name maps to a parameter of the table (diagnostic_updater's period)."""
    assert contract.RENAMED_PARAMETERS == {"diagnostics_period": "diagnostic_updater.period"}
    for old, new in contract.RENAMED_PARAMETERS.items():
        assert old not in DEFAULTS and new in DEFAULTS and old in parameter(new).description


def test_table_defaults():
    assert {p.name for p in PARAMETERS} == set(DEFAULTS) and DEFAULTS["method"] == "naima"
    assert len(PARAMETERS) == len(DEFAULTS)  # no name twice
    assert set(contract.MODEL_PARAMETERS) <= set(DEFAULTS)
    for p in PARAMETERS:
        assert check_parameters({p.name: p.default}, DEFAULTS) is None, p.name
        assert p.description and parameter(p.name) is p


def test_every_choice_is_named_in_the_description():
    """What `ros2 param describe` shows names every value the node accepts (method once omitted jbu)."""
    for p in PARAMETERS:
        for choice in p.choices or ():
            assert str(choice) in p.description, (p.name, choice)
    assert set(BASELINE_METHODS) <= set(parameter("method").choices)


def test_scale_range_and_choices():
    """A ROS IntegerRange cannot say {4, 8, 16}: the declared range is the tightest one, 4..16 step
    4, and validation rejects what it admits beyond the choices (12); the description says so."""
    p = parameter("scale")
    assert p.choices == SCALES
    lo, hi, step = p.int_range
    in_range = set(range(lo, hi + 1, step))
    assert set(SCALES) <= in_range
    for value in in_range - set(SCALES):
        assert "scale must be one of 4, 8, 16" in check_parameters({"scale": value}, DEFAULTS)
        assert str(value) in p.description
    assert check_parameters({"scale": 5}, DEFAULTS)  # off the step: rclpy refuses it, and so do we


def test_ranges_hold_their_defaults():
    for p in PARAMETERS:
        if p.int_range:
            lo, hi, step = p.int_range
            assert lo <= p.default <= hi and (p.default - lo) % step == 0, p.name
        if p.float_range:
            assert p.float_range[0] <= p.default <= p.float_range[1], p.name


def test_config_yaml_is_the_table():
    """config/naima.yaml holds every parameter with exactly the table's default and type."""
    params = node_parameters(REPO / "config" / "naima.yaml", "naima")
    assert set(params) == set(DEFAULTS), "config/naima.yaml and naima_ros.contract differ"
    for name, value in params.items():
        assert type(value) is type(DEFAULTS[name]) and value == DEFAULTS[name], name


def test_docs_table_is_generated_from_the_contract():
    """docs/node.md holds `python -m naima_ros.contract`'s output verbatim."""
    tables = markdown_tables()
    assert tables in (REPO / "docs" / "node.md").read_text(), \
        "docs/node.md: paste the output of `python -m naima_ros.contract`"
    for p in PARAMETERS:
        assert f"| `{p.name}` |" in tables
    for t in TOPICS.values():
        assert f"| `{t.name}` |" in tables


def test_topics():
    assert {t.direction for t in TOPICS.values()} == {"in", "out"}
    assert all(t.qos in QOS_ROLES for t in TOPICS.values())
    assert all(role == t.role for role, t in TOPICS.items())
    assert {t.name for t in TOPICS.values() if t.name.startswith(OUTPUT_NAMESPACE + "/")} == {
        "depth_registered/image_rect", "depth_registered/camera_info", "depth_registered/points",
        "depth_registered/image_rect_32fc1", "depth_registered/image_rect_16uc1",
        "depth_registered/confidence"}
    # one topic per output_encodings entry, beside camera_info (image_transport pairs siblings)
    assert {contract.encoding_topic(e) for e in parameter("output_encodings").choices} <= \
        {t.name for t in TOPICS.values()}
    # every topic is remappable from the launch file, each by its own argument
    arguments = [t.launch_argument for t in TOPICS.values()]
    assert all(arguments) and len(set(arguments)) == len(arguments)
    assert TOPICS["depth_info"].launch_argument == "depth_info_topic"
    assert TOPICS["rgb"].absolute == "/rgb/image_rect_color"
    assert TOPICS["diagnostics"].absolute == "/diagnostics"
    # inputs are best effort like camera drivers, outputs reliable
    assert {QOS_ROLES[t.qos].reliability for t in TOPICS.values() if t.direction == "in"} == \
        {"best_effort"}


def _string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_no_topic_name_is_hard_coded_outside_the_contract():
    """Every module and the launch file take topic names from `TOPICS`: a literal copy drifts."""
    names = {t.name for t in TOPICS.values()} | {t.absolute for t in TOPICS.values()}
    files = sorted((REPO / "naima_ros").rglob("*.py")) + [REPO / "launch" / "naima.launch.py"]
    found = {str(f.relative_to(REPO)): sorted(_string_constants(f) & names) for f in files
             if f.name != "contract.py"}
    assert {f: n for f, n in found.items() if n} == {}


def test_bag_topics_default_to_the_node_topics():
    from naima_ros.bags.io import Topics
    topics = Topics()
    for role in Topics.roles():
        if role in TOPICS:
            assert getattr(topics, role) == TOPICS[role].absolute
    assert set(Topics.roles()) - set(TOPICS) == {"gt"}  # the ground truth only bags have


def test_descriptors_and_qos_profiles():
    pytest.importorskip("rclpy", reason="the ROS side of the contract needs rclpy")
    from rclpy.qos import qos_profile_sensor_data

    from naima_ros.ros.parameters import descriptor
    from naima_ros.ros.topics import message_class, qos_profile

    d = descriptor(parameter("scale"))
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value,
            d.integer_range[0].step) == (4, 16, 4)
    assert d.additional_constraints == "one of: 4, 8, 16"
    assert descriptor(parameter("queue_size")).read_only
    assert qos_profile("sensor_data") == qos_profile_sensor_data
    assert qos_profile("reliable") is not qos_profile("reliable")  # rclpy writes overrides into it
    for t in TOPICS.values():
        assert message_class(t.msg_type).__name__ == t.msg_type.rsplit("/", 1)[1]
