"""The given-plan orchestrator: a plan from a file (model text or JSON) run as written, if it
passes every check; the brain only looks, for validation and verification."""

from __future__ import annotations

import time

from erarm.agent.parse import parse_plan
from erarm.agent.session import Session
from erarm.agent.verify import Verification, check_goals, disturbed, goals_of, taken_up


class GivenPlan:
    def __init__(self, plan_text: str):
        self.plan_text = plan_text

    def run(self, session: Session) -> None:
        plan = parse_plan(self.plan_text)  # a bad file fails before the camera is used
        seen = session.look()
        validated = session.validate(plan, seen, time.perf_counter())
        if session.options.dry_run:
            session.log("dry run: nothing moved")
            return
        session.act(validated.actions, validated)
        after = session.look()
        goals = goals_of(validated.transfers, seen.objects)
        knocked = disturbed(seen.objects, after.objects, taken_up(validated.actions,
                                                                  seen.objects))
        pointing = check_goals(goals, after.objects, seen.objects) if goals else Verification(
            verified=knocked is None, goals=[], reason=knocked or (
                f"all {len(validated.actions)} steps ran; the plan sets no object down "
                "elsewhere, and nothing it did not take up moved"))
        session.judge(seen.frame, after, pointing)
