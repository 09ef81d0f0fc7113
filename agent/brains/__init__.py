"""Choosing a brain. google-genai is imported only when the Gemini brain is chosen: it costs
several times more start-up than everything the local path needs."""

from __future__ import annotations

import os
from enum import StrEnum

from agent.brains.base import Brain, PlanRequest
from agent.config import GeminiSettings
from robots.errors import ConfigError

__all__ = ["Brain", "BrainChoice", "PlanRequest", "api_key_from_env", "check_task", "choose_brain",
           "refuse_gemini_only"]

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


class BrainChoice(StrEnum):
    auto = "auto"
    local = "local"
    gemini = "gemini"


def api_key_from_env() -> str | None:
    for name in KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def resolve(choice: BrainChoice | str) -> BrainChoice:
    """`auto` means Gemini when an API key is set, else the offline local brain."""
    choice = BrainChoice(choice)
    if choice is BrainChoice.auto:
        return BrainChoice.gemini if api_key_from_env() else BrainChoice.local
    return choice


def refuse_gemini_only(choice: BrainChoice | str, given: dict[str, bool]) -> None:
    """Refuse a flag (`given`: flag -> whether it was set) that only the Gemini brain reads,
    rather than ignore it silently, when the brain will be the local one."""
    if resolve(choice) is not BrainChoice.local:
        return
    flag = next((flag for flag, used in given.items() if used), None)
    if flag is not None:
        how = ("--brain gemini" if BrainChoice(choice) is BrainChoice.local else
               "--brain gemini, or set GEMINI_API_KEY for --brain auto")
        raise ConfigError(f"{flag} needs the Gemini brain ({how}); the local brain has no "
                          "use for it")


def check_task(task: str, brain: Brain) -> None:
    """Refuse, before any workcell opens or run folder is made, a task no brain can do (empty,
    or impossible by construction) and one outside the local brain's grammar when it is the
    brain; the Gemini brain reads free-form text."""
    from agent.brains.local import LocalBrain
    from agent.instructions import refuse_unplannable

    refuse_unplannable(task, strict=isinstance(brain, LocalBrain))


def choose_brain(choice: BrainChoice | str = BrainChoice.auto,
                 settings: GeminiSettings | None = None) -> Brain:
    """`auto` means Gemini when an API key is set, else the offline local brain."""
    choice = resolve(choice)
    if choice is BrainChoice.local:
        from agent.brains.local import LocalBrain

        return LocalBrain()
    from agent.brains.gemini import GeminiBrain

    return GeminiBrain.from_env(settings)
