"""Settings from a TOML config file (`--config FILE`) and command-line flags, flags winning.

    [gemini]
    model = "gemini-robotics-er-2-preview"
    temperature = 1.0          # unset: 1.0 on ER 2 and Gemini 3, 0.5 on ER 1.x (README)
    orchestration = "tools"    # or "plan"; unset: what the model's docs do (README)
    [gemini.thinking_budget]   # tokens per kind of question; mapped to a level on ER 2
    plan = 4096
    [gemini.safety]            # harassment, hate_speech, sexually_explicit, dangerous_content
    dangerous_content = "BLOCK_ONLY_HIGH"

    [robot]                    # the driver --robot would name, and its --robot-opt options
    name = "xarm"
    options = { host = "192.168.1.200", speed_mm_s = 100 }
    [camera]                   # likewise --camera and --camera-opt
    name = "opencv"
    options = { source = 0, calibration = "calibration.json" }

Flags win over the file. Unknown keys are errors, not silent defaults.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from erarm.robots.errors import ConfigError
from erarm.robots.files import read_input_text

DEFAULT_MODEL = "gemini-robotics-er-2-preview"
KNOWN_MODELS = ("gemini-robotics-er-2-preview", "gemini-robotics-er-1.5-preview")
QUESTION_KINDS = ("point", "detect", "locate", "trajectory", "plan", "tools", "judge", "goals")
DEFAULT_THINKING_BUDGET = {"point": 0, "detect": 0, "locate": 0, "trajectory": 0, "plan": 2048,
                           "tools": 2048, "judge": 1024, "goals": 512}


class Orchestration(StrEnum):
    """How the model's decisions become motion: a whole plan per request, validated before any
    of it moves, or the robot's functions called step by step, each validated before it runs.
    `auto` follows the model's docs (README, "Orchestration")."""

    auto = "auto"
    plan = "plan"
    tools = "tools"


class SafetyCategory(StrEnum):
    harassment = "HARM_CATEGORY_HARASSMENT"
    hate_speech = "HARM_CATEGORY_HATE_SPEECH"
    sexually_explicit = "HARM_CATEGORY_SEXUALLY_EXPLICIT"
    dangerous_content = "HARM_CATEGORY_DANGEROUS_CONTENT"


class SafetyThreshold(StrEnum):
    BLOCK_NONE = "BLOCK_NONE"
    BLOCK_ONLY_HIGH = "BLOCK_ONLY_HIGH"
    BLOCK_MEDIUM_AND_ABOVE = "BLOCK_MEDIUM_AND_ABOVE"
    BLOCK_LOW_AND_ABOVE = "BLOCK_LOW_AND_ABOVE"
    OFF = "OFF"


class ImageFormat(StrEnum):
    jpeg = "jpeg"
    png = "png"


class GeminiSettings(BaseModel):
    """How erarm talks to Gemini, with the Robotics-ER docs' defaults."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    base_url: str | None = None  # None: the SDK's default, or GOOGLE_GEMINI_BASE_URL
    api_version: str = "v1beta"  # the preview robotics models are served on v1beta
    temperature: float | None = Field(None, ge=0, le=2)  # None: the model's advised default
    thinking_budget: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_THINKING_BUDGET))
    thinking_level: str | None = None  # overrides the budget mapping on models that take levels
    safety: dict[SafetyCategory, SafetyThreshold] = Field(default_factory=dict)
    structured_output: bool = True  # ask for JSON with a response schema
    orchestration: Orchestration = Orchestration.auto  # --orchestration wins
    timeout_s: float = Field(60.0, gt=0)  # per HTTP attempt
    attempts: int = Field(4, ge=1, le=10)
    backoff_s: float = Field(1.0, ge=0)  # first retry delay, doubling, with jitter
    max_backoff_s: float = Field(20.0, ge=0)
    # the longest wait a server may ask for (429 RetryInfo, Retry-After); longer is an error
    max_retry_delay_s: float = Field(60.0, ge=0)
    image_max_side: int = Field(1024, ge=64)
    image_format: ImageFormat = ImageFormat.jpeg

    @field_validator("thinking_budget")
    @classmethod
    def _known_kinds(cls, budget: dict[str, int]) -> dict[str, int]:
        unknown = set(budget) - set(QUESTION_KINDS)
        if unknown:
            raise ValueError(f"unknown question kind(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(QUESTION_KINDS)})")
        return {**DEFAULT_THINKING_BUDGET, **budget}

    @field_validator("safety", mode="before")
    @classmethod
    def _category_names(cls, safety: dict) -> dict:
        """Accept the short names (dangerous_content) as well as the API's."""
        names = {c.name: c.value for c in SafetyCategory}
        return {names.get(str(k).lower(), k): str(v).upper() for k, v in dict(safety).items()}


class DriverChoice(BaseModel):
    """A robot or camera driver by name, with its options, as `--robot`/`--robot-opt` give."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class ErarmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    robot: DriverChoice | None = None
    camera: DriverChoice | None = None


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def load_config(path: Path | None) -> ErarmConfig:
    if path is None:
        return ErarmConfig()
    try:
        data = tomllib.loads(read_input_text(path, "config file"))
        return ErarmConfig.model_validate(data)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    except ValidationError as err:
        raise ConfigError(f"config file {path}: {_first_error(err)}") from None


def _pairs(entries: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, got {entry!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def gemini_settings(config: ErarmConfig, *, model: str | None = None,
                    base_url: str | None = None, safety: list[str] = (),
                    thinking_budget: list[str] = ()) -> GeminiSettings:
    """The config file's Gemini settings with command-line flags applied on top."""
    data = config.gemini.model_dump()
    if model:
        data["model"] = model
    if base_url:
        data["base_url"] = base_url
    data["safety"] = {**data["safety"], **_pairs(list(safety), "--safety")}
    budgets = _pairs(list(thinking_budget), "--thinking-budget")
    try:
        data["thinking_budget"] = {**data["thinking_budget"],
                                   **{kind: int(value) for kind, value in budgets.items()}}
    except ValueError:
        raise ConfigError("--thinking-budget takes KIND=TOKENS with a whole number") from None
    try:
        return GeminiSettings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_first_error(err)) from None
