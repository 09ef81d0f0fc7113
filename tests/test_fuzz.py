"""Property-based proof that model text can only ever become typed objects or erarm's own error.

Whatever a model (or an attacker) writes, the parsers and the validator either return typed,
finite, in-bounds values or raise an `ErarmError` with a message. Nothing else escapes.
"""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli.run import read_plan_file
from agent.errors import PlanRejected, ReplyError
from agent.parse import parse_boxes, parse_plan, parse_points, parse_trajectory, parse_verdict
from agent.schemas import SIGNATURES, Move, Plan, SetGripperState
from agent.surface import SurfaceMap
from agent.validate import Landmark, validate_plan
from robots.base import WorkspaceLimits
from robots.errors import ErarmError
from tests.conftest import raycast_frame, synthetic_calibration

PARSERS = [parse_points, parse_boxes, parse_plan, parse_trajectory, parse_verdict]
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=40)

call_like = st.fixed_dictionaries({
    "function": st.sampled_from([*SIGNATURES, "fly", "move ", "MOVE", "", "mоve"]) | st.text(),
    "args": st.lists(json_values, max_size=5) | st.dictionaries(
        st.sampled_from(["x", "y", "high", "opened", "z"]), json_values, max_size=4) | json_values,
})


def only_our_errors(parse, text):
    try:
        return parse(text)
    except ErarmError as err:
        assert str(err) and "\n" not in str(err)
        return None


@FAST
@given(st.text(max_size=2000))
def test_any_text(text):
    for parse in PARSERS:
        only_our_errors(parse, text)


@FAST
@given(json_values, st.text(max_size=200), st.text(max_size=200))
def test_any_json_wrapped_in_prose(value, before, after):
    text = before + json.dumps(value) + after
    for parse in PARSERS:
        only_our_errors(parse, text)


@FAST
@given(st.lists(call_like, min_size=1, max_size=12), st.booleans())
def test_call_shaped_json_is_typed_or_refused(calls, fenced):
    text = json.dumps(calls)
    plan = only_our_errors(parse_plan, f"```json\n{text}\n```" if fenced else text)
    if plan is None:
        return
    for call in plan.calls:
        if isinstance(call, Move):
            assert math.isfinite(call.x) and math.isfinite(call.y) and isinstance(call.high, bool)


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("plans") / "plan.bin"
    path.write_bytes(data)
    try:
        text, _ = read_plan_file(path)
    except ErarmError as err:
        assert "not UTF-8" in str(err)
        return
    only_our_errors(parse_plan, text)


@pytest.mark.parametrize("parse", PARSERS)
def test_non_text_is_refused(parse):
    for thing in (None, b"[]", 42, ["point"], {"function": "move"}):
        with pytest.raises(ReplyError):
            parse(thing)


MEGABYTE = 1_000_000
ADVERSARIAL = {
    "open brackets": "[" * MEGABYTE,
    "open braces": "{" * MEGABYTE,
    "nested unterminated": "[1," * (MEGABYTE // 3),
    "deep closed": "[" * (MEGABYTE // 2) + "]" * (MEGABYTE // 2),
    "quotes and brackets": '["' * (MEGABYTE // 2),
    "prose with brackets": "see [note " * (MEGABYTE // 10),
    "many tiny lists": "[1] " * (MEGABYTE // 4),
    "huge plan": json.dumps([{"function": "move", "args": [400, 0, True]}] * 22_000),
    "long number": "[" + "9" * MEGABYTE + "]",
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_megabyte_adversarial_replies_are_refused(name):
    """Correctness only; their speed is measured by scripts/bench_parser.py, not asserted."""
    for parse in (parse_plan, parse_points):
        with pytest.raises(ReplyError):
            parse(ADVERSARIAL[name])


@pytest.fixture(scope="module")
def surface():
    frame = raycast_frame(synthetic_calibration(eye=(0.95, 0.0, 0.7), target=(0.45, 0.0, 0.0)),
                          [(0.42, 0.05, 0.02, 0.04)])
    return SurfaceMap(frame, WorkspaceLimits())


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
calls = st.lists(st.one_of(
    st.builds(Move, x=finite, y=finite, high=st.booleans()),
    st.builds(SetGripperState, opened=st.booleans())), min_size=0, max_size=70)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls, st.booleans(), st.booleans())
def test_the_validator_refuses_or_stays_in_bounds(surface, plan_calls, gripper_open, strict):
    limits = WorkspaceLimits()
    landmarks = [Landmark(label="blue block", x_mm=420, y_mm=50)] if strict else None
    try:
        validated = validate_plan(Plan(calls=plan_calls), surface, limits, gripper_open,
                                  landmarks=landmarks)
    except PlanRejected as err:
        assert str(err) and "\n" not in str(err)
        return
    for action in validated.actions:
        if action.pose is not None:
            pose = action.pose
            assert limits.x_min <= pose.x <= limits.x_max
            assert limits.y_min <= pose.y <= limits.y_max
            assert limits.z_min <= pose.z <= limits.z_max
            assert math.hypot(pose.x, pose.y) <= limits.max_reach_m
    assert validated.actions[-1].call["function"] == "returnToOrigin"
