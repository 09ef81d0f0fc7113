"""Property-based proof that model text can only ever become typed objects or erarm's own error.

Whatever a model (or an attacker) writes, the parsers and the validator either return typed,
finite, in-bounds values or raise an `ErarmError` with a message. Nothing else escapes.
"""

import contextlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import erarm.agent.parse as parse_module
from erarm.agent.api import read_plan_file
from erarm.agent.errors import PlanRejected, ReplyError
from erarm.agent.parse import parse_boxes, parse_plan, parse_points, parse_trajectory, parse_verdict
from erarm.agent.schemas import SIGNATURES, Move, Plan, SetGripperState
from erarm.agent.surface import SurfaceMap
from erarm.agent.validate import Landmark, validate_plan
from erarm.robots.base import WorkspaceLimits
from erarm.robots.errors import ErarmError
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


def adversarial_replies(size: int) -> dict[str, str]:
    """Hostile replies of about `size` characters (scripts/bench_parser.py times them)."""
    return {
        "open brackets": "[" * size,
        "open braces": "{" * size,
        "nested unterminated": "[1," * (size // 3),
        "deep closed": "[" * (size // 2) + "]" * (size // 2),
        "quotes and brackets": '["' * (size // 2),
        "escaped quotes": '["' + '\\"' * ((size - 2) // 2),
        "prose with brackets": "see [note " * (size // 10),
        "many tiny lists": "[1] " * (size // 4),
        "many drafts": ('[{"function": "returnToOrigin"}] ' * ((size - 20) // 33)
                        + '[{"function": 0}]'),
        "huge plan": json.dumps([{"function": "move", "args": [400, 0, True]}] * (size // 46)),
        "long number": "[" + "9" * (size - 2) + "]",
        "many long numbers": ("[" + "9" * 30 + "] ") * (size // 33),
    }


ADVERSARIAL = adversarial_replies(MEGABYTE)


class CountingText(str):
    """Text that counts the characters copied out of it by slicing."""

    copied = 0

    def __getitem__(self, key):
        piece = super().__getitem__(key)
        CountingText.copied += len(piece)
        return piece


class CountingDecoder:
    """The parser's JSON decoder, counting its decode attempts."""

    def __init__(self, decoder):
        self.decoder, self.attempts = decoder, 0

    def raw_decode(self, text, start):
        self.attempts += 1
        return self.decoder.raw_decode(text, start)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_the_parsers_work_grows_linearly_with_the_reply(name, monkeypatch):
    """Structural, not timed: doubling a hostile reply at most doubles the JSON decode attempts
    and the characters copied out of it (the reasoning before each of 10,000 tiny lists was
    copied once per list: quadratic)."""
    work = []
    for size in (20_000, 40_000):
        decoder = CountingDecoder(parse_module._DECODER)
        monkeypatch.setattr(parse_module, "_DECODER", decoder)
        CountingText.copied = 0
        for parser in (parse_plan, parse_points):
            with contextlib.suppress(ReplyError):
                parser(CountingText(adversarial_replies(size)[name]))
        work.append((decoder.attempts, CountingText.copied))
        assert CountingText.copied <= 2 * size
    (attempts_1, copied_1), (attempts_2, copied_2) = work
    assert attempts_2 <= 2 * attempts_1 + 4 and copied_2 <= 2 * copied_1 + 200


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_megabyte_adversarial_replies_are_refused(name):
    """Correctness only; their speed is measured by scripts/bench_parser.py, not asserted."""
    for parser in (parse_plan, parse_points):
        with pytest.raises(ReplyError):
            parser(ADVERSARIAL[name])


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
    assert validated.actions[-1].goes_home


# -- The CLI end to end, on generated files: bounded (few examples), never a traceback ---------
ERARM = str(Path(sys.executable).with_name("erarm"))
CORPUS = Path(__file__).with_name("adversarial")
PICK = "pick the blue block into the orange bowl"  # for the corpus's scene.json
VALID_PLAN = [  # picks the blue block into the orange bowl in tests/adversarial/scene.json
    {"function": "move", "args": [513, -184, True]},
    {"function": "setGripperState", "args": [True]},
    {"function": "move", "args": [513, -184, False]},
    {"function": "setGripperState", "args": [False]},
    {"function": "move", "args": [513, -184, True]},
    {"function": "move", "args": [439, -21, True]},
    {"function": "move", "args": [439, -21, False]},
    {"function": "setGripperState", "args": [True]},
    {"function": "move", "args": [439, -21, True]},
    {"function": "returnToOrigin", "args": []},
]
CLI = settings(max_examples=4, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LITERAL = "\u0000literal\u0000"  # stands where a raw JSON literal goes into the written file
bad_values = (st.none() | st.text(max_size=8) | st.lists(st.integers(), max_size=2)
              | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
              | st.sampled_from(["NaN", "-Infinity", "9" * 400, "-1e400", "1e308"]).map(
                  lambda literal: (LITERAL, literal)))


@st.composite
def plan_files(draw) -> bytes:
    """The valid plan with one thing broken: a value, an unknown key, a function, the text."""
    calls = json.loads(json.dumps(VALID_PLAN))
    step = draw(st.integers(0, len(calls) - 1))
    how = draw(st.sampled_from(["value", "key", "function", "args", "bytes", "cut"]))
    literal = None
    if how == "value" and calls[step]["args"]:
        value = draw(bad_values)
        if isinstance(value, tuple):
            value, literal = value
        calls[step]["args"][draw(st.integers(0, len(calls[step]["args"]) - 1))] = value
    elif how == "key":
        calls[step][draw(st.sampled_from(["speed", "force", "z", " args"]))] = 99999
    elif how == "function":
        calls[step]["function"] = draw(st.text(max_size=12) | st.sampled_from(["MOVE", "mоve"]))
    elif how == "args":
        calls[step]["args"] = draw(json_values)
    text = json.dumps(calls, indent=draw(st.sampled_from([None, 1])))
    if literal is not None:
        text = text.replace(json.dumps(LITERAL), literal)
    data = text.encode()
    if how == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "cut":
        data = data[:draw(st.integers(0, len(data) - 1))]
    return data


def assert_clean_exit(done: subprocess.CompletedProcess) -> None:
    """Exit 0, 1 or 2; a failure says so in exactly one error line; never a traceback."""
    assert done.returncode in (0, 1, 2), done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "internal error" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("erarm: error:")]
    assert len(errors) == (done.returncode != 0), done.stderr


def run_erarm(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    return subprocess.run([ERARM, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


@CLI
@given(plan_files())
@example(json.dumps(VALID_PLAN).replace("[439, -21, false]", "[439, -2100, false]").encode())
def test_execute_on_generated_plan_files(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("execute")
    (folder / "plan.json").write_bytes(data)
    done = run_erarm("execute", str(folder / "plan.json"), "--task", PICK, "--scene",
                     str(CORPUS / "scene.json"), "--json", "--out", str(folder / "run"))
    assert_clean_exit(done)
    if done.stdout.strip():
        result = json.loads(done.stdout)
        if done.returncode == 2:
            assert result["steps_executed"] == 0  # refused: nothing moved


@st.composite
def image_files(draw) -> bytes:
    """Small PNGs of noise or flat colour, or bytes that only start like one."""
    height, width = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pixels = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if draw(st.booleans())
              else np.full((height, width, 3), draw(st.integers(0, 255)), np.uint8))
    png = cv2.imencode(".png", pixels)[1].tobytes()
    return png if draw(st.booleans()) else png[:draw(st.integers(0, len(png) - 1))]


queries = st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                           max_size=12), max_size=2)


@CLI
@given(image_files(), queries, st.sampled_from(["point", "detect"]))
def test_point_and_detect_on_generated_images(tmp_path_factory, data, words, command):
    image = tmp_path_factory.mktemp("images") / "image.png"
    image.write_bytes(data)
    args = [command, str(image), "--brain", "local", "--json"]
    done = run_erarm(*args, *(["--", *words] if command == "point" else []))
    assert_clean_exit(done)
    if done.returncode == 0:
        answer = json.loads(done.stdout)
        assert isinstance(answer["points" if command == "point" else "boxes"], list)
