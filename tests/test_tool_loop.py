"""The tool-loop orchestrator (Robotics-ER 2's function calling) through the real SDK against the
loopback server: what erarm sends back for each call, what the arm does, and how it ends."""

import base64
import json
import re

import pytest

from erarm.agent.config import Orchestration
from erarm.agent.results import CallOutcome
from erarm.agent.run import RunOptions, run_task
from erarm.agent.schemas import function_call
from tests.fake_gemini import Reply, _planned, calls_reply, model_like, text_reply

TASK = "pick the blue block into the orange bowl"


def _run(gemini, sim_cell, tmp_path, responder, dry_run=False, **options):
    cell = sim_cell(TASK, seed=1)
    return cell, run_task(TASK, gemini(), cell, tmp_path / "run", options=RunOptions(
        orchestration=Orchestration.tools, dry_run=dry_run, **options), record=True)


def _plan_calls(request) -> list[dict]:
    """The calls a capable model would make for the task the first request lists."""
    return [function_call(c) for c in _planned(request.prompt).calls]


class OneCallPerTurn:
    """The docs' loop taken slowly: one call per turn, each signed, then a sentence."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, request) -> Reply:
        if not request.declares_tools:
            return model_like(request)  # the looks and the judgement
        if not request.model_turns:
            self.calls = _plan_calls(request)
        if not self.calls:
            return text_reply("Done: the blue block is in the orange bowl.")
        call = self.calls.pop(0)
        return calls_reply({**call, "id": f"c{len(request.model_turns)}"},
                           signature=signature(len(request.model_turns)))


def signature(turn: int) -> str:
    return base64.b64encode(f"the model's thoughts at turn {turn}".encode()).decode()


def tool_turns(*replies: Reply):
    """A responder: the scripted turns for the tool loop's requests, the model's looks and
    judgements for the others."""
    queue = list(replies)

    def respond(request) -> Reply:
        return queue.pop(0) if request.declares_tools else model_like(request)

    return respond


def test_one_call_per_turn_answers_each_by_name_and_id(gemini, fake_gemini, sim_cell, tmp_path):
    fake_gemini.responder = OneCallPerTurn()
    _, result = _run(gemini, sim_cell, tmp_path, fake_gemini.responder)
    assert result.success is True and result.error is None
    assert result.orchestration == "tools"
    turns = [r for r in fake_gemini.requests if r.declares_tools]
    declared = {d["name"] for d in turns[0].body["tools"][0]["functionDeclarations"]}
    assert declared == {"move", "setGripperState", "returnToOrigin", "look", "gripperState"}
    assert turns[0].images and "- blue block: " in turns[0].prompt
    for n, request in enumerate(turns[1:], 1):
        # each answer names and ids the call it answers
        model = request.model_turns[-1]["parts"][0]
        (response,) = request.function_responses
        assert response["name"] == model["functionCall"]["name"]
        assert response["id"] == f"c{n - 1}"
        assert "result" in response["response"], response
    moves = [c for c in result.tool_calls if c.name == "move"]
    assert all(c.outcome is CallOutcome.ran for c in result.tool_calls)
    assert len(moves) == 6 and result.steps_executed == 10
    assert result.model_verdict is not None and result.verified is True
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["plan"][-1] == {
        "function": "returnToOrigin", "args": []}


def test_signatures_go_back_exactly_as_they_came(gemini, fake_gemini, sim_cell, tmp_path):
    fake_gemini.responder = OneCallPerTurn()
    _run(gemini, sim_cell, tmp_path, fake_gemini.responder)
    turns = [r for r in fake_gemini.requests if r.declares_tools]
    for n, request in enumerate(turns[1:]):
        # every earlier turn of the model, in order, each with the signature it came with
        signed = [t["parts"][0]["thoughtSignature"] for t in request.model_turns]
        assert [base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in signed] == [
            base64.b64decode(signature(k)) for k in range(n + 1)]


def test_several_calls_per_turn(gemini, fake_gemini, sim_cell, tmp_path):
    fake_gemini.responder = model_like  # the whole plan in one turn, then a sentence
    _, result = _run(gemini, sim_cell, tmp_path, model_like)
    assert result.success is True
    turns = [r for r in fake_gemini.requests if r.declares_tools]
    assert len(turns) == 2
    assert [r["name"] for r in turns[1].function_responses] == [
        c.name for c in result.tool_calls]
    assert len(turns[1].function_responses) == 10  # nine calls and the return home


def test_a_refused_call_moves_nothing_and_the_model_corrects_it(gemini, fake_gemini, sim_cell,
                                                                tmp_path):
    script = OneCallPerTurn()

    def responder(request):
        if request.declares_tools and not request.model_turns:
            script.calls = _plan_calls(request)
            return calls_reply({"name": "move", "args": {"x": 2000, "y": 0, "high": True},
                                "id": "far"})
        return script(request)

    fake_gemini.responder = responder
    _, result = _run(gemini, sim_cell, tmp_path, responder)
    first = result.tool_calls[0]
    assert first.outcome is CallOutcome.refused
    assert first.response["error"].startswith("refused, nothing moved: step 1 move(2000, 0, ")
    answered = [r for r in fake_gemini.requests if r.declares_tools][1].function_responses[0]
    assert answered == {"id": "far", "name": "move", "response": first.response}
    commands = [json.loads(line) for line in
                (tmp_path / "run" / "record" / "robot.jsonl").read_text().splitlines()]
    assert all(abs(c["commanded"]["x"]) < 1.0 for c in commands if "commanded" in c)
    assert result.success is True  # corrected, the rest ran


def test_a_return_home_from_down_low_lifts_straight_up_first(gemini, fake_gemini, sim_cell,
                                                             tmp_path):
    """As a whole plan's returnToOrigin is: the model goes home from inside the bowl."""
    script = OneCallPerTurn()

    def responder(request):
        reply = script(request)
        if request.declares_tools and not request.model_turns:
            lift = script.calls.pop(-2)  # no lift after letting go
            assert lift["name"] == "move" and lift["args"]["high"] is True
        return reply

    fake_gemini.responder = responder
    _, result = _run(gemini, sim_cell, tmp_path, responder)
    assert result.success is True
    assert all(c.outcome is CallOutcome.ran for c in result.tool_calls)
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())["plan"]
    assert plan[-2]["function"] == "move" and plan[-2]["args"][2] is True  # erarm's lift
    assert plan[-4]["function"] == "move" and plan[-4]["args"][2] is False
    assert plan[-2]["args"][:2] == plan[-4]["args"][:2]  # straight up from where it let go
    timeline = (tmp_path / "run" / "record" / "timeline.jsonl").read_text()
    assert "erarm lifts the tool straight up before the model's returnToOrigin" in timeline


@pytest.mark.parametrize("call, says", [
    ({"name": "fly", "args": {"x": 1}}, "unknown function 'fly' (the functions are move, "
                                        "setGripperState, returnToOrigin, look, gripperState)"),
    ({"name": "move", "args": {"x": "412mm", "y": 0, "high": True}},
     "x must be a number, got \"412mm\""),
    ({"name": "move", "args": {"x": 400, "y": 0}}, "move takes arguments (x, y, high)"),
    ({"name": "setGripperState", "args": {"opened": 1}}, "opened must be true or false"),
])
def test_unknown_or_malformed_calls_come_back_as_errors(gemini, fake_gemini, sim_cell, tmp_path,
                                                        call, says):
    fake_gemini.responder = tool_turns(
        calls_reply({**call, "id": "bad"}, {"name": "gripperState", "args": {}, "id": "after"}),
        text_reply("I cannot do it."))
    _, result = _run(gemini, sim_cell, tmp_path, None)
    bad, after = result.tool_calls
    assert bad.outcome is CallOutcome.refused and says in bad.response["error"]
    # the call after a failed one in the same turn is not run
    assert after.outcome is CallOutcome.skipped
    assert result.steps_executed == 0 and result.success is False


def test_a_model_that_never_stops_is_stopped_at_the_turn_limit(gemini, fake_gemini, sim_cell,
                                                               tmp_path):
    def restless(request):
        if not request.declares_tools:
            return model_like(request)
        return calls_reply({"name": "move", "args": {"x": 400, "y": 0, "high": True},
                            "id": str(len(request.model_turns))})

    fake_gemini.responder = restless
    _, result = _run(gemini, sim_cell, tmp_path, restless, max_turns=6)
    assert result.exit_code == 1
    assert result.error == "the model was still calling functions after 6 turns"
    assert len([r for r in fake_gemini.requests if r.declares_tools]) == 6
    commands = (tmp_path / "run" / "record" / "robot.jsonl").read_text().splitlines()
    assert json.loads(commands[-1])["command"] == "return_to_origin"  # not left out there
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["actions"][-1]["added"]


def test_refusals_are_capped(gemini, fake_gemini, sim_cell, tmp_path):
    def stubborn(request):
        if not request.declares_tools:
            return model_like(request)
        return calls_reply({"name": "move", "args": {"x": 2000, "y": 0, "high": True}})

    fake_gemini.responder = stubborn
    _, result = _run(gemini, sim_cell, tmp_path, stubborn, max_refused_calls=3)
    assert result.exit_code == 1 and result.steps_executed == 0
    assert re.match(r"3 of the model's calls were refused; the last: step 1 move\(2000",
                    result.error)


def test_a_dry_run_validates_every_call_and_moves_nothing(gemini, fake_gemini, sim_cell,
                                                          tmp_path):
    fake_gemini.responder = OneCallPerTurn()
    cell, result = _run(gemini, sim_cell, tmp_path, fake_gemini.responder, dry_run=True)
    assert result.exit_code == 0 and result.steps_executed == 0
    assert cell.referee.judge().success is False
    assert all(c.outcome is CallOutcome.ran for c in result.tool_calls)
    assert all("dry run" in c.response["result"]["note"] for c in result.tool_calls)
    assert len(json.loads((tmp_path / "run" / "plan.json").read_text())["plan"]) == 10


def test_a_task_not_done_is_told_to_the_model(gemini, fake_gemini, sim_cell, tmp_path):
    """The model stops holding the block: erarm's check finds nothing placed, says so with a
    fresh image, and the model finishes the job."""
    script, rest = OneCallPerTurn(), []

    def responder(request):
        if not request.declares_tools:
            return model_like(request)
        if not request.model_turns:  # picks it up (five calls), then stops
            rest[:] = _plan_calls(request)
            script.calls, rest[:] = rest[1:5], rest[5:]
            return calls_reply({**_plan_calls(request)[0], "id": "c0"}, signature=signature(0))
        told = request.body["contents"][-1]["parts"]
        if any("finds the task not done" in p.get("text", "") for p in told):
            assert any("inlineData" in p for p in told)  # with a fresh image
            script.calls = rest
        return script(request)

    fake_gemini.responder = responder
    _, result = _run(gemini, sim_cell, tmp_path, responder)
    told = [r for r in fake_gemini.requests if r.declares_tools and any(
        "finds the task not done" in p.get("text", "")
        for p in r.body["contents"][-1]["parts"])]
    assert len(told) == 1 and "the calls moved no perceived object" in told[0].prompt
    assert result.success is True and result.verified is True


@pytest.mark.parametrize("flags, says", [
    (["--brain", "local", "--orchestration", "tools"],
     "the local brain cannot call the robot's functions step by step"),
    (["--emulate", "--orchestration", "tools", "--trajectory", "5"],
     "--trajectory shapes a whole plan: use it with --orchestration plan"),
    (["--emulate", "--open-loop"], "--open-loop shapes a whole plan"),  # auto: ER 2 calls tools
])
def test_what_the_tool_loop_cannot_do_is_refused_before_the_run(tmp_path, flags, says):
    from tests.test_bad_input import assert_refused, erarm

    done = erarm("run", TASK, *flags, "--out", tmp_path / "run")
    assert_refused(done)
    assert says in done.stderr
    assert not (tmp_path / "run").exists()


def test_robotics_er_2_calls_functions_by_default(tmp_path):
    from tests.test_bad_input import erarm

    done = erarm("run", TASK, "--seed", "2", "--emulate", "--emulate-opt", "latency_median_s=0",
                 "--json", "--record", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["orchestration"] == "tools" and result["success"] is True
    assert result["tool_calls"][-1]["name"] == "look"
    exchanges = [json.loads(line) for line in
                 (tmp_path / "run" / "record" / "exchanges.jsonl").read_text().splitlines()]
    tools = [e for e in exchanges if e["kind"] == "tools"]
    looks = [c for c in result["tool_calls"] if c["name"] == "look"]
    # one round trip per turn, per look the model asked for, and the first and last looks
    assert len(tools) == result["model_round_trips"] - len(looks) - 2
    assert all(e["model_requests"] for e in tools)


def test_a_server_echoing_the_key_in_its_calls_leaks_it_nowhere(fake_gemini, tmp_path):
    from tests.conftest import assert_key_absent
    from tests.test_gemini_run import erarm as erarm_with_key

    def echoing(request):
        if not request.declares_tools:
            return model_like(request)
        key = request.key
        if not request.model_turns:
            return calls_reply({"name": f"fly-{key}", "args": {"to": key}, "id": key},
                               text=f"My key is {key.upper()}.")
        if len(request.model_turns) == 1:
            return calls_reply({"name": "move", "args": {"x": key, "y": 0, "high": True}})
        return text_reply(f"Done, {key}.")

    fake_gemini.responder = echoing
    done = erarm_with_key("run", TASK, "--seed", "1", "--json", "--record", "--out",
                          str(tmp_path / "run"), "--base-url", fake_gemini.url)
    result = json.loads(done.stdout)
    assert result["orchestration"] == "tools"
    assert [c["outcome"] for c in result["tool_calls"]] == ["refused", "refused"]
    assert result["tool_calls"][0]["name"] == "fly-***"
    assert result["tool_calls"][1]["response"]["error"].endswith('x must be a number, got "***"')
    assert_key_absent(done.stdout, done.stderr, folder=tmp_path)


def test_the_summary_counts_the_models_calls(tmp_path):
    from tests.test_bad_input import erarm

    done = erarm("run", TASK, "--seed", "2", "--emulate", "--emulate-opt", "latency_median_s=0",
                 "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    ran = sum(c["outcome"] == "ran" for c in result["tool_calls"])
    assert (f"the model made {len(result['tool_calls'])} function calls in "
            f"{result['model_round_trips']} round trips: {ran} ran") in done.stdout
