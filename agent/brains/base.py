"""The seam every brain fits: questions about camera frames, answered as Gemini Robotics-ER text.

Brains return the model's raw text; `erarm.agent.parse` turns any brain's text into typed
objects, so the local brain and Gemini go through the same parser and the same safety checks.
Every brain answers `point`, `detect` and `plan`; `locate`, `trajectory`, `judge` and `tools` (a
conversation in which the model calls the robot's functions step by step) are capabilities a
brain declares (the local brain cannot honestly draw a path or judge a task from two
pictures; a remote model that can give a point and a box per object in one reply saves a round
trip per look).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from erarm.agent.errors import BrainUnavailable
from erarm.agent.schemas import SceneObject
from erarm.robots.base import Frame, WorkspaceLimits

CORE = frozenset({"point", "detect", "plan"})


class PlanRequest(BaseModel):
    """What a planner is told: the instruction, what was seen where, and the workspace."""

    task: str
    objects: list[SceneObject]
    limits: WorkspaceLimits


class ToolCall(BaseModel):
    """One function call a model made, as it made it: the API's id for it (when it gives one),
    the function's name and the arguments, not yet checked."""

    id: str | None = None
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ModelTurn(BaseModel):
    """One answer of a model that orchestrates step by step: what it said, what it called."""

    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)


@dataclass
class ToolResult:
    """What erarm answers a call with: a result or an error (`response`), and for a look the
    camera image."""

    call: ToolCall
    response: dict[str, Any]
    image: Frame | None = None


class LiveEventKind(StrEnum):
    """What a live session (the Live API) sends erarm."""


    said = "said"  # text from the model
    heard = "heard"  # what the server heard in the audio sent (its transcription)
    called = "called"  # function calls to run, then answer
    cancelled = "cancelled"  # calls the model no longer wants (ids)
    turn_done = "turn_done"  # the model finished its turn
    interrupted = "interrupted"  # the operator spoke over the model: what it was saying stops
    going_away = "going_away"  # the server will close the session soon
    closed = "closed"  # the session ended (the reason says how)


class LiveEvent(BaseModel):
    kind: LiveEventKind
    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)
    ids: list[str] = Field(default_factory=list)
    asked: bool = False  # a `closed` that erarm asked for (`close`)


class Conversation(Protocol):
    """A multi-turn exchange in which the model calls the robot's functions."""

    def start(self) -> ModelTurn:
        """The model's first answer to the task."""
        ...

    def reply(self, results: list[ToolResult]) -> ModelTurn:
        """Send the results of the last turn's calls, one per call; the model's next answer."""
        ...

    def tell(self, message: str, frame: Frame) -> ModelTurn:
        """After an answer without calls: a message and an image from erarm; the next answer."""
        ...

    def again(self) -> ModelTurn:
        """The last request once more (its reply could not be used)."""
        ...


@runtime_checkable
class Brain(Protocol):
    name: str
    capabilities: frozenset[str]  # CORE plus any of "locate", "trajectory", "judge", "tools",
    # "goals"

    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        """`[{"point": [y, x], "label": ...}]` for the named objects, or for all (up to limit)."""
        ...

    def detect(self, frame: Frame, limit: int = 25) -> str:
        """`[{"box_2d": [ymin, xmin, ymax, xmax], "label": ...}]` with unique labels."""
        ...

    def locate(self, frame: Frame, limit: int = 25) -> str:
        """`[{"point": [y, x], "box_2d": [ymin, xmin, ymax, xmax], "label": ...}]`: both at once."""
        ...

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        """Reasoning, then `[{"function": ..., "args": [...]}, ...]` in robot millimetres."""
        ...

    def converse(self, request: PlanRequest, frame: Frame) -> Conversation:
        """A conversation in which the model does the task by calling the robot's functions."""
        ...

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        """Points labelled "0".."n" along a path that carries out the instruction."""
        ...

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        """`{"done": true|false, "reason": ...}` from the scene before and after a task."""
        ...

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        """`[{"relation", "item", "target", "viewpoint"}]`: the task as goals over the labels."""
        ...


def require(brain: Brain, capability: str) -> None:
    """Refuse clearly, before any work, when a brain cannot answer a kind of question."""
    if capability not in brain.capabilities:
        raise BrainUnavailable(f"the {brain.name} brain cannot answer {capability} questions; "
                               "use --brain gemini")
