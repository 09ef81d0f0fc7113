"""Orchestrators: how a session's steps (look, plan, validate, execute, verify) are put together.

`WholePlan` asks the brain for a whole plan, validates all of it before any motion, and (in the
closed loop) executes one pick and place at a time, looking again after each; `GivenPlan` runs a
plan file as written, after the same checks. Other styles (a model that calls the robot's
functions one at a time, a live session) are further orchestrators on the same session,
envelope, recorder and verification.
"""

from __future__ import annotations

from typing import Protocol

from erarm.agent.session import Session


class Orchestrator(Protocol):
    def run(self, session: Session) -> None:
        """Do the session's task, filling in its result; raise an `ErarmError` when it cannot
        (the caller records it), and leave the arm at rest."""
        ...
