"""The tool-loop orchestrator, in Robotics-ER 2's dialect: the model calls the robot's functions
one or a few at a time, erarm checks and runs each, and answers with what happened, until the
model stops calling.

No call moves the arm before it has passed the same checks as a whole plan's steps (envelope,
reach, joint limits, strict targets against the latest look, what the gripper holds by the calls
so far): a refused call moves nothing and its reason goes back to the model as the function's
error, so it can correct itself. A motion that meets something, or a grasp that holds nothing,
stops the arm, backs off (open, up, home) and tells the model so. The loop ends when the model
answers without a call, or at the first of the run's limits (turns, refused calls, motions, wall
time), with the arm sent home. Then erarm looks once more and checks what was moved, with the
model's own judgement beside its check, as the whole-plan orchestrator does; when either finds
the task not done, the model is told so with a fresh image, and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from erarm import prompts
from erarm.agent.brains.base import (
    Conversation,
    ModelTurn,
    PlanRequest,
    ToolCall,
    ToolResult,
)
from erarm.agent.config import Orchestration
from erarm.agent.errors import GaveUp, PlanRejected, ReplyError
from erarm.agent.execute import holding_watch
from erarm.agent.orchestration import check_options
from erarm.agent.parallel import together
from erarm.agent.parse import RawCall, parse_call
from erarm.agent.results import Attempt, CallOutcome, Outcome, Phase, Stop, ToolCallRecord
from erarm.agent.schemas import OBSERVATIONS, SIGNATURES, ReturnToOrigin, SceneObject, listing
from erarm.agent.session import Session, Sighting
from erarm.agent.validate import Action, ValidatedPlan
from erarm.agent.verify import Goal, Verification, carried_up, check_goals, goals_of


def objects_seen(objects: list[SceneObject]) -> list[dict]:
    """A look's objects as the model reads them: millimetres in the robot's base frame."""
    return [{"label": o.label, "x_mm": round(o.position_mm[0]), "y_mm": round(o.position_mm[1]),
             "top_mm": round(o.position_mm[2]), "across_mm": round(2 * o.radius_mm)}
            for o in objects]


FAILED = (CallOutcome.refused, CallOutcome.stopped, CallOutcome.skipped)


class CallHandler:
    """Answers a model's function calls, each checked before it runs, for one conversation (the
    tool loop's, a live session's): the latest look, the checks, what ran, what was refused."""

    def __init__(self, session: Session, seen: Sighting, moves: bool = True):
        self.session = session
        self.seen = seen
        self.first = seen  # the look the conversation began from: what nothing should move
        self.moves = moves  # False: the conversation only watches, whatever the model calls
        self.validator = session.step_validator(seen)
        self.watch = holding_watch(session.robot)
        self.actions: list[Action] = []  # what ran (or, in a dry run, would have), in order
        self.goals: dict[str, Goal] = {}  # per object moved: where it was last let go
        self.counted = 0  # the validator's transfers already in `goals`
        self.turn = 0
        self.refused = 0
        self.motions = 0
        self.calls = 0  # every call answered, observations too
        self.began = time.perf_counter()  # the conversation's wall time counts from here
        self.away = False  # the arm is somewhere other than home

    # -- answering one call ------------------------------------------------------------------
    def answer_turn(self, calls: list[ToolCall]) -> list[ToolResult]:
        """Every call of a turn answered in order; after one that was refused or stopped the
        rest are not run (the model planned them on what did not happen)."""
        results: list[ToolResult] = []
        records = self.session.result.tool_calls
        bound = self.session.options.max_calls_per_turn
        for index, call in enumerate(calls):
            if index >= bound:
                results.append(self._record(call, CallOutcome.skipped, {
                    "error": f"not run: a turn may make at most {bound} calls"}))
            elif results and records[-1].outcome in FAILED:
                results.append(self._record(call, CallOutcome.skipped, {
                    "error": "not run: a call before it in this turn failed"}))
            else:
                results.append(self.answer(call))
        return results

    def _within_limits(self) -> None:
        """Every call counts against the conversation's limits, not only each turn: a turn of
        many calls ends at the limit, with the arm sent home."""
        options = self.session.options
        self.calls += 1
        if time.perf_counter() - self.began > options.time_limit_s:
            self.give_up(f"the model had not finished after {options.time_limit_s:g} s")
        if self.calls > options.max_calls:
            self.give_up(f"the model made more than {options.max_calls} calls")

    def answer(self, call: ToolCall) -> ToolResult:
        self._within_limits()
        if call.name in OBSERVATIONS:
            return self._observe(call)
        if call.name not in SIGNATURES:
            known = ", ".join([*SIGNATURES, *OBSERVATIONS])
            return self._refuse(call, f"unknown function {call.name!r} (the functions are "
                                      f"{known})")
        if not self.moves:
            return self._refuse(call, f"{call.name} is not yours to call: this session watches; "
                                      "the operator's commands move the arm, each rehearsed "
                                      "in a twin first")
        try:
            typed = parse_call(self.validator.steps + 1, RawCall(function=call.name,
                                                                 args=call.args))
            lift = self.validator.way_home()[:-1] if isinstance(typed, ReturnToOrigin) else []
            if lift:  # as a whole plan's returnToOrigin is: the way home starts above the table
                self.session.log("erarm lifts the tool straight up before the model's "
                                 "returnToOrigin")
                lifted = self.validator.check(lift[0]).model_copy(update={"added": True})
                self.actions.append(lifted)
                stop = self._act(lifted)
                if stop is not None:
                    return self._stopped(call, stop)
            action = self.validator.check(typed)
        except (ReplyError, PlanRejected) as err:
            return self._refuse(call, str(err))
        self.motions += 1
        if self.motions > self.session.options.max_motions:
            self.give_up(f"the model asked for more than {self.session.options.max_motions} "
                          "motions")
        return self._run(call, action)

    def _observe(self, call: ToolCall) -> ToolResult:
        session = self.session
        looking = call.name == "look"
        if looking and not session.options.dry_run:
            self.go_home()  # so the arm does not hide the table
        state = session.robot.state()
        gripper = {"opened": state.gripper_open, "holding": state.holding,
                   "opening_mm": round(state.gripper_opening_m * 1000, 1)}
        if not looking:
            return self._record(call, CallOutcome.observed, {"result": gripper})
        if session.options.dry_run:  # nothing moved: the scene is as first seen
            return self._record(call, CallOutcome.observed, {"result": {
                "objects": objects_seen(self.seen.objects), "gripper": gripper,
                "note": "dry run: nothing has moved, the scene is as first seen"}},
                image=self.seen)
        self.seen = seen = session.look()
        session.seen_again(self.validator, seen)
        carried = carried_up(seen.frame, state, seen.objects)
        if carried is not None:  # moving on would carry it about
            self.give_up(f"stopped: {carried.detail}; free the gripper, then run again")
        return self._record(call, CallOutcome.observed, {"result": {
            "objects": objects_seen(seen.objects), "gripper": gripper}}, image=seen)

    def _refuse(self, call: ToolCall, reason: str) -> ToolResult:
        self.refused += 1
        limit = self.session.options.max_refused_calls
        self.session.log(f"warning: refused {call.name}: {reason}")
        self.session.narrate(f"I refused the model's {call.name}: {reason.split(';')[0]}.")
        result = self._record(call, CallOutcome.refused,
                              {"error": f"refused, nothing moved: {reason}"})
        if self.refused >= limit:
            self.give_up(f"{limit} of the model's calls were refused; the last: {reason}")
        return result

    def _run(self, call: ToolCall, action: Action) -> ToolResult:
        session = self.session
        self.actions.append(action)
        placed = goals_of(self.validator.transfers[self.counted:], self.seen.objects)
        self.counted = len(self.validator.transfers)
        self.goals.update({g.item: g for g in placed})
        if session.options.dry_run:
            return self._record(call, CallOutcome.ran, {"result": {
                "note": "dry run: validated, not moved", **_planned(action)}})
        stop = self._act(action)
        state = session.robot.state()
        for goal in placed:
            session.narrate(f"I'm letting go of the {goal.item} over the {goal.container}.")
        attempts = session.result.attempts
        attempts += [Attempt(round=self.turn, item=g.item, target=g.container,
                             outcome=Outcome.placed, steps=1,
                             detail=f"let go over the {g.container}; checked at the end")
                     for g in placed]
        if stop is not None:
            return self._stopped(call, stop)
        self.away = not action.goes_home
        reached = state.tool
        outcome = {"reached_mm": [round(reached.x * 1000), round(reached.y * 1000),
                                  round(reached.z * 1000)],
                   "holding": state.holding}
        if action.opened is not None:
            outcome["opening_mm"] = round(state.gripper_opening_m * 1000, 1)
        return self._record(call, CallOutcome.ran, {"result": outcome})

    def _act(self, action: Action) -> Stop | None:
        """Run one validated action, unless this is a dry run."""
        if self.session.options.dry_run:
            return None
        return self.session.act([action], ValidatedPlan(actions=[action], transfers=[],
                                                        warnings=[]),
                                self.watch, recover_blocked=True, clear_view=False,
                                context=f"turn {self.turn}")

    def _stopped(self, call: ToolCall, stop: Stop) -> ToolResult:
        """The session backed off (gripper open, arm home): checking starts over from there."""
        session = self.session
        session.result.attempts.append(Attempt(round=self.turn, outcome=stop.outcome,
                                               detail=stop.detail, steps=1))
        self.away = False
        self.validator = session.step_validator(self.seen, self.validator.steps)
        self.counted = 0
        self.watch = holding_watch(session.robot)
        return self._record(call, CallOutcome.stopped, {"error": (
            f"{stop.detail}; erarm opened the gripper, lifted the arm and returned it to "
            "the origin: call look to see the scene as it is now")})

    def _record(self, call: ToolCall, outcome: CallOutcome, response: dict,
                image: Sighting | None = None) -> ToolResult:
        self.session.result.tool_calls.append(ToolCallRecord(
            turn=self.turn, id=call.id, name=call.name, args=call.args, outcome=outcome,
            response=response))
        return ToolResult(call=call, response=response,
                          image=image.frame if image is not None else None)

    # -- ending -------------------------------------------------------------------------------
    def go_home(self) -> None:
        """Leave the arm at rest at home, validated steps like the model's own: straight up
        first when the model left the tool down low."""
        if not self.away:
            return
        actions = [self.validator.check(call).model_copy(update={"added": True})
                   for call in self.validator.way_home()]
        self.actions += actions
        if not self.session.options.dry_run:
            home = ValidatedPlan(actions=actions, transfers=[], warnings=[])
            self.session.act(actions, home, clear_view=False, context=f"turn {self.turn}")
        self.away = False

    def give_up(self, reason: str) -> None:
        self.go_home()
        raise GaveUp(reason)

    def file(self, reasoning: str) -> None:
        if self.actions:
            self.session.file_plan(ValidatedPlan(actions=self.actions, transfers=[],
                                                 warnings=[]), reasoning, self.seen)


def _planned(action: Action) -> dict:
    if action.pose is None:
        return {}
    pose = action.pose
    return {"target_mm": [round(pose.x * 1000), round(pose.y * 1000), round(pose.z * 1000)]}


class ToolLoop:
    """Look, then converse: the model calls, erarm checks, runs and answers, until it stops.
    Then erarm checks the task itself (a look, where each moved object landed, the model's
    judgement of before and after); when that finds the task not done, it tells the model what
    it sees and the conversation goes on, at most `options.reasks` times."""

    def run(self, session: Session) -> None:
        brain, options, result = session.brain, session.options, session.result
        check_options(options.model_copy(update={"orchestration": Orchestration.tools}), brain)
        result.orchestration = Orchestration.tools
        start = session.look()
        loop = CallHandler(session, start)
        session.log(f"asking the {brain.name} brain to do the task by calling the robot's "
                    "functions")
        conversation = brain.converse(PlanRequest(task=session.task, objects=start.objects,
                                                  limits=session.robot.limits), start.frame)
        turn = ModelTurn()
        try:
            turn = self._converse(session, loop, conversation, conversation.start)
            if options.dry_run:
                session.log("dry run: nothing moved")
                return
            for check in range(options.reasks + 1):
                after = session.look(judge_from=start.frame) if loop.actions else start
                pointing = moved_where_let_go(loop, after)
                not_done = not_done_reason(pointing, after)
                if not_done is None or not loop.actions or check == options.reasks:
                    break
                session.log(f"erarm's check: {not_done}; telling the model")
                message = prompts.render("not_done", reason=not_done,
                                         objects=listing(after.objects))
                turn = self._converse(session, loop, conversation,
                                      partial(conversation.tell, message, after.frame))
        finally:
            loop.file(turn.text)
        session.judge(start.frame, after, pointing)

    def _converse(self, session: Session, loop: CallHandler, conversation: Conversation,
                  send: Callable[[], ModelTurn]) -> ModelTurn:
        """The model's turns from `send` on, each call answered, until it stops calling or a
        limit is reached; the arm is left at home."""
        options = session.options
        turn = self._answer(session, loop, send, conversation.again)
        while turn.calls:
            if loop.turn >= options.max_turns:
                loop.give_up(f"the model was still calling functions after "
                             f"{options.max_turns} turns")
            results = loop.answer_turn(turn.calls)  # each call checks the time limit
            turn = self._answer(session, loop, partial(conversation.reply, results),
                                conversation.again)
        loop.go_home()
        session.log(f"the model is done: {turn.text.strip() or '(no words)'}")
        return turn

    @staticmethod
    def _answer(session: Session, loop: CallHandler, send: Callable[[], ModelTurn],
                again: Callable[[], ModelTurn]) -> ModelTurn:
        """The model's next turn; one that could not be read is asked for again."""
        clock = time.perf_counter()
        session.phase = Phase.planning
        loop.turn += 1
        session.asked(1)
        first = together(send)[0]
        turn = session.reasked(again, 1, "model's answer", first=first)
        session.result.timings.planning_s += time.perf_counter() - clock
        for call in turn.calls:
            session.log(f"turn {loop.turn}: the model calls {call.name}"
                        f"({', '.join(f'{k}={v}' for k, v in call.args.items())})")
        return turn


def moved_where_let_go(loop: CallHandler, after: Sighting) -> Verification:
    """erarm's own check: every object moved lies where it was last let go."""
    if loop.goals:
        return check_goals(list(loop.goals.values()), after.objects, loop.first.objects)
    return Verification(verified=not loop.actions, goals=[],
                        reason="the model found nothing to do" if not loop.actions else
                        "the calls moved no perceived object")


def not_done_reason(pointing: Verification, after: Sighting) -> str | None:
    """Why erarm's check or the model's judgement finds the task not done; None if neither."""
    if not pointing.verified:
        return pointing.reason
    verdict = after.verdict
    if verdict is not None and verdict.error is None and not verdict.value.done:
        return f"judged from the images before and after: {verdict.value.reason}"
    return None
