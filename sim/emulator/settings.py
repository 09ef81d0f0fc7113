"""How the emulated Robotics-ER model errs: every rate is a probability per answer or per entry,
every distance is on the model's 0-1000 image grid. The defaults and their sources are in the
README ("The Robotics-ER emulator")."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field


class EmulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="the address to serve on (loopback)")
    port: int = Field(0, ge=0, le=65535, description="the port to serve on; 0: any free port")
    seed: int = Field(0, description="seeds every answer's randomness")
    pointing_sigma: float = Field(
        12.0, ge=0, description="standard deviation of a point's error per axis, 0-1000 grid")
    box_jitter: float = Field(
        8.0, ge=0, description="standard deviation of each box edge's error, 0-1000 grid")
    confusion_rate: float = Field(
        0.02, ge=0, le=1, description="chance per entry that its label names another colour "
                                      "or kind")
    miss_rate: float = Field(0.03, ge=0, le=1, description="chance per object of leaving it out")
    hallucination_rate: float = Field(
        0.02, ge=0, le=1, description="chance per answer of one extra entry where nothing is")
    malformed_rate: float = Field(
        0.01, ge=0, le=1, description="chance per entry of swapped box corners or a point "
                                      "outside 0-1000")
    prose_rate: float = Field(
        0.05, ge=0, le=1, description="chance per answer of prose or a code fence around the "
                                      "JSON")
    max_tokens_rate: float = Field(
        0.01, ge=0, le=1, description="chance per answer of a reply cut off (finishReason "
                                      "MAX_TOKENS)")
    judge_always_done: bool = Field(
        False, description="the judgement says done whatever it sees (as a model's sometimes "
                           "does): erarm's own check must catch every failure")
    misread_rate: float = Field(
        0.02, ge=0, le=1, description="chance per goal, when asked to read a task as goals, of "
                                      "misreading it (item and target swapped, or another "
                                      "relation)")
    judge_error_rate: float = Field(
        0.05, ge=0, le=1, description="chance per judgement of the wrong verdict")
    tool_calls_per_turn: int = Field(
        10, ge=1, le=20, description="most function calls in one turn of the tool loop (each "
                                     "turn makes 1 to this many, a look always last)")
    malformed_call_rate: float = Field(
        0.02, ge=0, le=1, description="chance per move call in the tool loop of a garbled "
                                      "argument (a string where a number belongs)")
    latency_median_s: float = Field(
        1.5, ge=0, description="median seconds per answer (lognormal); 0: answer at once")
    latency_spread: float = Field(
        0.35, ge=0, description="sigma of the latency's logarithm (lognormal spread)")
    requests_per_minute: int = Field(
        0, ge=0, description="requests allowed per rolling minute across all sessions (more: "
                             "429 RESOURCE_EXHAUSTED with a retryDelay); 0: no limit")
    match_mm: float = Field(
        40.0, gt=0, description="a plan-prompt entry within this distance (mm) of a true object "
                                "is taken as that object")

    def latency_s(self, rng: random.Random) -> float:
        """How long one answer takes: lognormal around the median, or at once."""
        if self.latency_median_s <= 0:
            return 0.0
        return self.latency_median_s * math.exp(self.latency_spread * rng.gauss(0, 1))
