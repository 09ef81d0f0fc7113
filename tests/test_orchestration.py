"""The orchestration seam: the whole-plan loop's policy on typed records, and a session that any
orchestrator can drive."""

import pytest

from erarm.agent.brains.local import LocalBrain
from erarm.agent.execute import StepReport, holding_watch
from erarm.agent.orchestration.whole_plan import first_transfer, judge_attempt
from erarm.agent.recording.run_folder import RunFolder
from erarm.agent.results import Attempt, Outcome, Stop
from erarm.agent.run import _conduct
from erarm.agent.schemas import Move, ReturnToOrigin, SetGripperState
from erarm.agent.session import RunOptions, Session
from erarm.agent.validate import Action, ValidatedPlan
from erarm.agent.verify import Verification
from erarm.robots.base import ToolPose

TASK = "pick the blue block into the orange bowl"


def _actions(*calls) -> list[Action]:
    actions = []
    for step, call in enumerate(calls, 1):
        pose = ToolPose(x=0.4, y=0.0, z=0.2) if isinstance(call, Move) else None
        opened = call.opened if isinstance(call, SetGripperState) else None
        actions.append(Action(step=step, call=call, pose=pose, opened=opened))
    return actions


def test_the_first_transfer_ends_after_the_lift_and_the_return_home():
    up, down = Move(x=400, y=0, high=True), Move(x=400, y=0, high=False)
    actions = _actions(SetGripperState(opened=True), up, down, SetGripperState(opened=False), up,
                       Move(x=500, y=100, high=True), Move(x=500, y=100, high=False),
                       SetGripperState(opened=True), up, ReturnToOrigin(), up, down)
    batch = first_transfer(ValidatedPlan(actions=actions, transfers=[], warnings=[]))
    assert [a.step for a in batch] == list(range(1, 11))
    assert batch[-1].goes_home and batch[-2].lifts


@pytest.mark.parametrize(("stop", "landed", "outcome"), [
    (None, None, Outcome.placed),
    (None, False, Outcome.landed_elsewhere),
    (Stop(outcome=Outcome.missed_grasp, detail="anything at all"), None, Outcome.missed_grasp),
    (Stop(outcome=Outcome.dropped, detail="reworded: it fell"), True, Outcome.dropped),
    # fingers that met a neighbour as they opened: the look decides
    (Stop(outcome=Outcome.jammed, detail="x"), True, Outcome.placed),
    (Stop(outcome=Outcome.jammed, detail="x"), False, Outcome.jammed),
])
def test_a_rounds_outcome_comes_from_typed_stops_and_looks_never_from_wording(stop, landed,
                                                                              outcome):
    attempt = Attempt(round=1, outcome=Outcome.placed)
    look = None if landed is None else Verification(verified=landed, reason="seen", goals=[])
    judge_attempt(attempt, stop, look)
    assert attempt.outcome is outcome
    if stop is not None and outcome is stop.outcome:
        assert attempt.detail == stop.detail


class _Gripper:
    """A robot whose gripper reports holding what the test says."""

    def __init__(self):
        self.holding = True

    def state(self):
        return type("State", (), {"holding": self.holding})()


def test_the_gripper_watch_names_what_it_saw():
    robot = _Gripper()
    watch = holding_watch(robot)
    close, carry, release = _actions(SetGripperState(opened=False), Move(x=1, y=1, high=True),
                                     SetGripperState(opened=True))
    missed = watch(close, StepReport(step=1, label="", holding=False, duration_s=0))
    assert missed.outcome is Outcome.missed_grasp
    assert watch(close, StepReport(step=1, label="", holding=True, duration_s=0)) is None
    robot.holding = False
    assert watch(carry, StepReport(step=2, label="", duration_s=0)).outcome is Outcome.dropped
    stuck = watch(release, StepReport(step=3, label="", holding=True, duration_s=0))
    assert stuck.outcome is Outcome.jammed


class LookTwice:
    """An orchestrator of the test's own: look, then look again; it moves nothing."""

    def run(self, session: Session) -> None:
        session.look()
        session.look()


def test_any_orchestrator_runs_on_the_same_session_and_run_folder(sim_cell, tmp_path):
    cell = sim_cell(task=TASK, seed=1)
    session = Session(TASK, LocalBrain(), cell, RunFolder.claim(tmp_path / "run"),
                      lambda _: None, RunOptions(), confirm=None, record=True)
    result = _conduct(session, LookTwice())
    assert session.looks == 2 and result.steps_executed == 0
    assert {o.label for o in result.objects} >= {"blue block", "orange bowl"}
    for name in ("camera.png", "calibration.json", "overlay.png", "final.png", "result.json",
                 "record/timeline.jsonl", "record/exchanges.jsonl"):
        assert (tmp_path / "run" / name).is_file(), name
    assert result.ground_truth is not None and result.success is False  # nothing was moved
