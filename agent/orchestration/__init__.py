"""Orchestrators: how a session's steps (look, plan, validate, execute, verify) are put together.

`WholePlan` asks the brain for a whole plan, validates all of it before any motion, and (in the
closed loop) executes one pick and place at a time, looking again after each; `GivenPlan` runs a
plan file as written, after the same checks; `ToolLoop` lets a model call the robot's functions
one at a time, each checked before it runs; `Rehearsed` runs that loop in a simulated twin first
and moves the real arm through the twin's calls as one validated plan. All share the session,
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


def resolved(choice: Orchestration, brain: Brain) -> Orchestration:
    """`auto` made concrete, as the brain's model is documented: the tool loop for
    Robotics-ER 2, a whole plan for ER 1.x and the local brain."""
    if choice is Orchestration.auto:
        return getattr(brain, "orchestration", Orchestration.plan)
    return choice


def rehearsing(options: RunOptions, brain: Brain, physical: bool) -> bool:
    """Whether the model's calls are rehearsed in a twin first: asked for, and always before a
    physical arm follows a model step by step."""
    tools = resolved(options.orchestration, brain) is Orchestration.tools
    return tools and (options.rehearse or physical)


def check_options(options: RunOptions, brain: Brain) -> None:
    """Refuse, before a run starts, a brain that cannot call functions, and options that shape
    a whole plan, when the model is to call functions; a rehearsal without them."""
    if resolved(options.orchestration, brain) is not Orchestration.tools:
        if options.rehearse:
            raise ConfigError("--rehearse rehearses a model's function calls: use it with "
                              "--orchestration tools (a whole plan is validated before any "
                              "motion already)")
        return
    if "tools" not in brain.capabilities:
        raise ConfigError(f"the {brain.name} brain cannot call the robot's functions step by "
                          "step: use --orchestration plan, or --brain gemini")
    if options.trajectory_points or not options.closed_loop:
        flag = "--trajectory" if options.trajectory_points else "--open-loop"
        raise ConfigError(f"{flag} shapes a whole plan: use it with --orchestration plan")
