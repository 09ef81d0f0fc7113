"""Choosing a brain. google-genai is imported only when the Gemini brain is chosen: it costs
several times more start-up than everything the local path needs."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from erarm.agent.brains.base import Brain, PlanRequest
from erarm.agent.config import GeminiSettings
from erarm.robots.errors import ConfigError

__all__ = ["EMULATOR_KEY", "Brain", "BrainChoice", "PlanRequest", "api_key_from_env",
           "build_brain", "check_task", "choose_brain", "refuse_gemini_only"]

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
    from erarm.agent.brains.local import LocalBrain
    from erarm.agent.instructions import refuse_unplannable

    refuse_unplannable(task, strict=isinstance(brain, LocalBrain))


EMULATOR_KEY = "erarm-emulator-needs-no-key"  # what the SDK sends erarm's emulator as a key


def choose_brain(choice: BrainChoice | str = BrainChoice.auto,
                 settings: GeminiSettings | None = None, api_key: str | None = None) -> Brain:
    """`auto` means Gemini when an API key is set, else the offline local brain."""
    choice = resolve(choice)
    if choice is BrainChoice.local:
        from erarm.agent.brains.local import LocalBrain

        return LocalBrain()
    from erarm.agent.brains.gemini import GeminiBrain

    return GeminiBrain(api_key, settings) if api_key else GeminiBrain.from_env(settings)


def build_brain(choice: BrainChoice | str, *, model: str | None = None, base_url: str | None = None,
                config: str | Path | None = None, safety: list[str] | None = None,
                thinking: list[str] | None = None, consensus: int = 1,
                zoom: bool = False, trajectory: int = 0, api_key: str | None = None) -> Brain:
    """The chosen brain with settings from the config file and flags, wrapped for consensus and
    zoom when asked; a Gemini-only flag with the local brain is refused. `api_key` is used
    instead of the environment's (the emulator's placeholder)."""
    from erarm.agent.config import gemini_settings, load_config

    if api_key and BrainChoice(choice) is BrainChoice.auto:
        choice = BrainChoice.gemini
    refuse_gemini_only(choice, {
        "--model": model is not None, "--base-url": base_url is not None,
        "--safety": bool(safety), "--thinking-budget": bool(thinking),
        "--consensus": consensus > 1, "--zoom": zoom, "--trajectory": trajectory > 0})

    settings = gemini_settings(load_config(config), model=model, base_url=base_url,
                               safety=safety or [], thinking_budget=thinking or [])
    brain = choose_brain(choice, settings, api_key)
    if consensus > 1:
        from erarm.agent.brains.consensus import ConsensusBrain

        brain = ConsensusBrain(brain, consensus)
    if zoom:
        from erarm.agent.brains.zoom import ZoomBrain

        brain = ZoomBrain(brain)
    return brain
