"""Orchestrators: how a session's steps (look, plan, validate, execute, verify) are put together.

`WholePlan` asks the brain for a whole plan, validates all of it before any motion, and (in the
closed loop) executes one pick and place at a time, looking again after each; `GivenPlan` runs a
plan file as written, after the same checks. Other styles (a model that calls the robot's
functions one at a time, a live session) are further orchestrators on the same session,
envelope, recorder and verification.
"""

from __future__ import annotations

from typing import Protocol

from erarm.agent.brains.base import Brain
from erarm.agent.config import Orchestration
from erarm.agent.session import RunOptions, Session
from erarm.robots.errors import ConfigError


class Orchestrator(Protocol):
    def run(self, session: Session) -> None:
        """Do the session's task, filling in its result; raise an `ErarmError` when it cannot
        (the caller records it), and leave the arm at rest."""
        ...


def resolved(choice: Orchestration, brain: Brain, physical: bool = False) -> Orchestration:
    """`auto` made concrete: as the brain's model is documented (the tool loop for
    Robotics-ER 2, a whole plan for ER 1.x and the local brain), and a whole plan on a physical
    arm, which must not follow a model step by step before rehearsing it in a twin."""
    if choice is Orchestration.auto:
        return Orchestration.plan if physical else getattr(brain, "orchestration",
                                                           Orchestration.plan)
    return choice


def check_options(options: RunOptions, brain: Brain, physical: bool = False) -> None:
    """Refuse, before a run starts, a brain that cannot call functions, a physical arm, and
    options that shape a whole plan, when the model is to call functions."""
    if resolved(options.orchestration, brain, physical) is not Orchestration.tools:
        return
    if physical:
        raise ConfigError("--orchestration tools drives the simulator only for now: a physical "
                          "arm must first rehearse the model's calls in a simulated twin, which "
                          "erarm cannot do yet; use --orchestration plan")
    if "tools" not in brain.capabilities:
        raise ConfigError(f"the {brain.name} brain cannot call the robot's functions step by "
                          "step: use --orchestration plan, or --brain gemini")
    if options.trajectory_points or not options.closed_loop:
        flag = "--trajectory" if options.trajectory_points else "--open-loop"
        raise ConfigError(f"{flag} shapes a whole plan: use it with --orchestration plan")
