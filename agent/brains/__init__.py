"""Choosing a brain. google-genai is imported only when the Gemini brain is chosen: it costs
several times more start-up than everything the local path needs."""

from __future__ import annotations

import os
from enum import StrEnum

from agent.brains.base import Brain, PlanRequest
from agent.config import GeminiSettings

__all__ = ["Brain", "BrainChoice", "PlanRequest", "api_key_from_env", "choose_brain"]

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


def choose_brain(choice: BrainChoice | str = BrainChoice.auto,
                 settings: GeminiSettings | None = None) -> Brain:
    """`auto` means Gemini when an API key is set, else the offline local brain."""
    choice = BrainChoice(choice)
    if choice is BrainChoice.auto:
        choice = BrainChoice.gemini if api_key_from_env() else BrainChoice.local
    if choice is BrainChoice.local:
        from agent.brains.local import LocalBrain

        return LocalBrain()
    from agent.brains.gemini import GeminiBrain

    return GeminiBrain.from_env(settings)
