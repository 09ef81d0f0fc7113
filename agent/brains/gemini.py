"""The Gemini Robotics-ER brain, through the google-genai SDK.

One `generate_content` call per question: the camera frame(s), downscaled and encoded once, as
inline bytes, then the prompt from `prompts/`; structured output asks for JSON in the schema of
the same pydantic models the parser validates with. Failures become one-line `ErarmError`s:
transient ones (429, 5xx, timeouts, dropped connections) are retried with exponential backoff and
jitter, waiting as long as the server asks (RetryInfo, Retry-After) up to a cap; a blocked prompt
or a reply withheld for safety names its category and probability; a reply that stopped early
(cut off at the token limit) is refused for what would move the arm and warned about otherwise.
This is the boundary the API key crosses: everything the brain returns, raises, logs or lets the
SDK warn is redacted (`erarm.agent.redaction`).
"""

from __future__ import annotations

import importlib
import logging
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from erarm import prompts
from erarm.agent.brains import api_key_from_env
from erarm.agent.brains.base import CORE, PlanRequest
from erarm.agent.config import KNOWN_MODELS, GeminiSettings, Orchestration
from erarm.agent.errors import BrainUnavailable, ReplyError, WithheldReply
from erarm.agent.goals import Relation
from erarm.agent.images import encode_image
from erarm.agent.redaction import guard, redact
from erarm.agent.schemas import CALL_TYPES, OBSERVATIONS, SIGNATURES, listing, response_schema
from erarm.robots.base import Frame
from erarm.robots.errors import ErarmError

if TYPE_CHECKING:
    from erarm.agent.brains.gemini_conversation import GeminiConversation

log = logging.getLogger(__name__)
T = TypeVar("T")

Exchange = Callable[[dict], None]  # receives each request/response summary, for records

# never used incomplete: what the arm follows, and the goals a run is verified against
COMPLETE_KINDS = ("plan", "trajectory", "tools", "goals")
WHAT_COMES_BACK = {"point": "points", "detect": "boxes", "locate": "points and boxes",
                   "trajectory": "path", "plan": "plan", "judge": "verdict",
                   "tools": "function calls", "goals": "goals"}
COMPLETE = {"STOP", "FINISH_REASON_UNSPECIFIED"}  # finish reasons of a whole reply
MAX_REPLY_CHARS = 100_000  # a longer reply is a runaway or an attack, not an answer
# What each model family is advised to use unless told otherwise (README, "Gemini settings").
LEVEL_MODEL_TEMPERATURE = 1.0  # Gemini 3 Developer Guide: keep Gemini 3 models at 1.0
BUDGET_MODEL_TEMPERATURE = 0.5  # the Gemini Robotics-ER 1.5 overview's examples


def uses_thinking_level(model: str) -> bool:
    """Gemini 3 and Robotics-ER 2 take a thinking level; Gemini 2.5 and ER 1.x a token budget
    (a budget where a level is expected, or both at once, is an API error)."""
    name = model.removeprefix("models/")
    return bool(re.match(r"gemini-(robotics-er-[2-9]|[3-9])", name))


def default_temperature(model: str) -> float:
    """The temperature the model's own docs advise (README, "Gemini settings")."""
    return LEVEL_MODEL_TEMPERATURE if uses_thinking_level(model) else BUDGET_MODEL_TEMPERATURE


def default_orchestration(model: str) -> Orchestration:
    """Robotics-ER 2's docs orchestrate by function calling; ER 1.x's ask for a whole plan."""
    return Orchestration.tools if uses_thinking_level(model) else Orchestration.plan


def thinking_level_for(budget: int) -> str:
    """The level closest to a token budget, for models that take levels."""
    if budget <= 0:
        return "minimal"
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts and connection failures of whichever HTTP library the SDK uses."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def robot_tools(blocking: bool = False, moves: bool = True) -> types.Tool:
    """The robot API as Gemini function declarations, typed from the same models the parser
    validates with and described by `prompts/robot_functions.json`, then the observations a
    model may call between motions. `blocking` (the Live API) marks the physical actions
    `BLOCKING`, so a streaming model waits for the arm before it goes on; without `moves` only
    the observations are declared (a session that watches)."""
    described = prompts.data("robot_functions.json")
    declarations = []
    for name, params in SIGNATURES.items() if moves else ():
        fields = CALL_TYPES[name].model_json_schema()["properties"]
        properties = {p: {"type": fields[p]["type"], "description": described[name]["args"][p]}
                      for p in params}
        declarations.append(types.FunctionDeclaration(
            name=name, description=described[name]["description"],
            parameters_json_schema={"type": "object", "properties": properties,
                                    "required": list(params)},
            behavior=types.Behavior.BLOCKING if blocking else None))
    declarations += [types.FunctionDeclaration(
        name=name, description=described[name]["description"],
        parameters_json_schema={"type": "object", "properties": {}}) for name in OBSERVATIONS]
    return types.Tool(function_declarations=declarations)


def task_prompt(template: str, request: PlanRequest) -> str:
    """A planning prompt: the task, the workspace and what was located where (millimetres)."""
    limits = request.limits
    return prompts.render(
        template, task=request.task, objects=listing(request.objects),
        x_min=round(limits.x_min * 1000), x_max=round(limits.x_max * 1000),
        y_min=round(limits.y_min * 1000), y_max=round(limits.y_max * 1000))


class GeminiBrain:
    name = "gemini"
    capabilities = CORE | {"locate", "trajectory", "judge", "tools", "goals"}

    def __init__(self, api_key: str, settings: GeminiSettings | None = None,
                 sleep: Callable[[float], None] = time.sleep, on_exchange: Exchange | None = None):
        self.settings = settings or GeminiSettings()
        guard(api_key)
        self._sleep = sleep
        self.on_exchange = on_exchange
        self.attempts_made = 0  # HTTP attempts, retries included
        http_options = types.HttpOptions(api_version=self.settings.api_version,
                                         timeout=round(self.settings.timeout_s * 1000))
        if self.settings.base_url:
            http_options.base_url = self.settings.base_url
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        self.temperature = (default_temperature(self.settings.model)
                            if self.settings.temperature is None else self.settings.temperature)
        if uses_thinking_level(self.settings.model) and self.temperature < 1.0:
            log.warning("temperature %g is below 1.0, which Google advises against for Gemini 3 "
                        "models such as %s (looping, degraded reasoning)", self.temperature,
                        self.settings.model)

    @property
    def orchestration(self) -> Orchestration:
        """How this model orchestrates unless the run says otherwise."""
        chosen = self.settings.orchestration
        return default_orchestration(self.settings.model) if chosen is Orchestration.auto \
            else chosen

    @classmethod
    def from_env(cls, settings: GeminiSettings | None = None) -> GeminiBrain:
        key = api_key_from_env()
        if not key:
            raise BrainUnavailable("the Gemini brain needs an API key in GEMINI_API_KEY or "
                                   "GOOGLE_API_KEY; without one use --brain local")
        return cls(key, settings)

    # -- the questions ---------------------------------------------------------------------
    def point(self, frame: Frame, queries: Sequence[str] | None = None, limit: int = 10) -> str:
        prompt = (prompts.render("point", queries=", ".join(queries)) if queries
                  else prompts.render("point_all", limit=limit))
        return self.ask([frame], prompt, "point")

    def detect(self, frame: Frame, limit: int = 25) -> str:
        return self.ask([frame], prompts.render("detect", limit=limit), "detect")

    def locate(self, frame: Frame, limit: int = 25) -> str:
        return self.ask([frame], prompts.render("locate", limit=limit), "locate")

    def plan(self, request: PlanRequest, frame: Frame) -> str:
        return self.ask([frame], task_prompt("plan", request), "plan")

    def converse(self, request: PlanRequest, frame: Frame) -> GeminiConversation:
        from erarm.agent.brains.gemini_conversation import GeminiConversation

        return GeminiConversation(self, request, frame)

    def trajectory(self, frame: Frame, instruction: str, points: int = 15) -> str:
        return self.ask([frame], prompts.render("trajectory", instruction=instruction,
                                                points=points), "trajectory")

    def judge(self, before: Frame, after: Frame, task: str) -> str:
        return self.ask([before, after], prompts.render("judge", task=task), "judge")

    def read_goals(self, frame: Frame, task: str, labels: Sequence[str]) -> str:
        relations = ", ".join(f'"{r.value}"' for r in Relation)
        return self.ask([frame], prompts.render("goals", task=task, relations=relations,
                                                objects=", ".join(labels) or "none"), "goals")

    # -- one request -----------------------------------------------------------------------
    def config(self, kind: str) -> types.GenerateContentConfig:
        settings = self.settings
        budget = settings.thinking_budget.get(kind, 0)
        if uses_thinking_level(settings.model):
            thinking = types.ThinkingConfig(
                thinking_level=settings.thinking_level or thinking_level_for(budget))
        else:
            thinking = types.ThinkingConfig(thinking_budget=budget)
        config = types.GenerateContentConfig(
            temperature=self.temperature, thinking_config=thinking,
            safety_settings=[types.SafetySetting(category=c.value, threshold=t.value)
                             for c, t in settings.safety.items()] or None)
        if kind == "tools":  # erarm runs each call itself, after checking it
            config.tools = [robot_tools()]
            config.automatic_function_calling = types.AutomaticFunctionCallingConfig(disable=True)
        elif settings.structured_output:
            config.response_mime_type = "application/json"
            config.response_json_schema = response_schema(kind)
        return config

    def image_part(self, frame: Frame) -> types.Part:
        data, mime = encode_image(frame, self.settings.image_max_side, self.settings.image_format)
        return types.Part.from_bytes(data=data, mime_type=mime)

    def ask(self, frames: Sequence[Frame], prompt: str, kind: str) -> str:
        """Send the frames and the prompt; return the reply's text or raise a one-line error."""
        parts = [self.image_part(frame) for frame in frames]
        record = {"kind": kind, "model": self.settings.model, "prompt": prompt,
                  "image_bytes": [len(p.inline_data.data) for p in parts]}

        def read(response: Any) -> tuple[str, dict]:
            text, finish = self._text_of(response, kind)
            return text, {"reply": text, "finish_reason": finish}

        return self.exchange([*parts, prompt], kind, record, read)

    def exchange(self, contents: list, kind: str, record: dict,
                 read: Callable[[Any], tuple[T, dict]]) -> T:
        """One request: what `read` makes of the response, and the record of both (with what
        `read` says of it, or the error) sent to `on_exchange`. Errors leave as one-line
        `ErarmError`s with the key redacted."""
        started = time.perf_counter()
        try:
            value, summary = read(self._generate(contents, self.config(kind)))
        except ErarmError as err:
            message = redact(str(err))
            record.update(error=message, seconds=time.perf_counter() - started)
            self._emit(record)
            raise type(err)(message) from None  # the SDK's exception, key and all, stays behind
        record.update(summary, seconds=time.perf_counter() - started)
        self._emit(record)
        return value

    def _emit(self, record: dict) -> None:
        if self.on_exchange:
            self.on_exchange(record)

    def _generate(self, contents: list, config: types.GenerateContentConfig) -> Any:
        transient = _transport_errors()
        settings = self.settings
        for attempt in range(1, settings.attempts + 1):
            self.attempts_made += 1
            asked_s = None  # the delay the server asks for, if it says
            try:
                with _sdk_warnings_logged():
                    return self._client.models.generate_content(
                        model=settings.model, contents=contents, config=config)
            except genai_errors.APIError as err:
                retry = err.code == 429 or (err.code or 0) >= 500
                problem = self._api_problem(err)
                asked_s = _server_retry_delay_s(err)
            except transient as err:
                retry, problem = True, f"no answer from the Gemini API ({type(err).__name__})"
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as err:
                # a body that is not JSON, or not the API's shape: the SDK chokes on it
                detail = " ".join(str(err).split())[:300]
                retry, problem = False, f"the Gemini API sent a malformed response ({detail})"
            if retry and asked_s is not None and asked_s > settings.max_retry_delay_s:
                raise BrainUnavailable(redact(
                    f"{problem}; it asks to retry in {asked_s:g} s, longer than erarm waits "
                    f"(gemini.max_retry_delay_s = {settings.max_retry_delay_s:g} s)"))
            if not retry or attempt == settings.attempts:
                suffix = f" after {attempt} attempts" if retry and attempt > 1 else ""
                raise BrainUnavailable(redact(problem + suffix))
            delay = min(settings.max_backoff_s, settings.backoff_s * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # jitter, so parallel clients spread out
            if asked_s is not None:
                delay = max(delay, asked_s)  # never sooner than the server asked
            log.warning("%s; retrying in %.1f s (attempt %d of %d)", redact(problem), delay,
                        attempt + 1, settings.attempts)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _api_problem(self, err: genai_errors.APIError) -> str:
        message = " ".join(str(err.message or err.status or "").split())[:200]
        if err.code == 404:
            return (f"the Gemini API does not know the model {self.settings.model!r}; choose "
                    f"another with --model (known: {', '.join(KNOWN_MODELS)})")
        if err.code in (401, 403):
            return f"the Gemini API refused the API key ({err.code}): {message}"
        if err.code == 429:
            return "the Gemini API is rate limiting this key (429)"
        return f"the Gemini API failed ({err.code} {err.status}): {message}"

    def _text_of(self, response: Any, kind: str) -> tuple[str, str]:
        """The reply's text and its finish reason."""
        parts, reason = self.reply_parts(response, kind)
        text = "".join(p.text for p in parts if p.text and not p.thought)
        if not text.strip():
            raise ReplyError(f"the Gemini API returned an empty reply (finish reason {reason})")
        return redact(text), reason

    def reply_parts(self, response: Any, kind: str) -> tuple[list, str]:
        """The reply's parts and its finish reason, or a one-line error for a prompt or reply
        withheld, no candidate, or (for what moves the arm) a reply that stopped early."""
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            raise WithheldReply("the Gemini API blocked the prompt "
                                f"({_name(feedback.block_reason)})"
                                f"{_ratings(feedback.safety_ratings)}")
        candidates = response.candidates or []
        if not candidates:
            raise ReplyError("the Gemini API returned no candidates")
        candidate = candidates[0]
        reason = _name(candidate.finish_reason or "FINISH_REASON_UNSPECIFIED")
        if reason == "SAFETY":
            raise WithheldReply("the Gemini API withheld the reply for safety"
                                f"{_ratings(candidate.safety_ratings)}")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        size = sum(len(p.text or "") + len(str(p.function_call.args or "")
                                            if p.function_call else "") for p in parts)
        if size > MAX_REPLY_CHARS:  # neither kept in the history nor written to the record
            raise ReplyError(f"the Gemini reply is {size:,} characters long; erarm reads at "
                             f"most {MAX_REPLY_CHARS:,} (a robot's answer is a few thousand)")
        early = "" if reason in COMPLETE else (
            "was cut off at its output token limit (MAX_TOKENS)" if reason == "MAX_TOKENS"
            else f"stopped early (finish reason {reason})")
        if early and kind in COMPLETE_KINDS:
            unused = "are not used" if kind == "goals" else "is not used; nothing moved"
            raise ReplyError(f"the Gemini reply {early}, so its {WHAT_COMES_BACK[kind]} may be "
                             f"incomplete and {unused}")
        if early:
            log.warning("the Gemini reply %s: the %s may be incomplete", early,
                        WHAT_COMES_BACK[kind])
        return list(parts), reason


@contextmanager
def _sdk_warnings_logged() -> Iterator[None]:
    """Python warnings the SDK raises during a request go to erarm's log, redacted, at info level,
    instead of being printed as they are by the warnings module. They are about enum values it
    does not know, quoting them (a server may put anything there, the key too); erarm reports
    those values itself, in the one line that says what went wrong."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                log.info("google-genai: %s", redact(str(warning.message)))


def _server_retry_delay_s(err: genai_errors.APIError) -> float | None:
    """How long the server asks to wait: google.rpc.RetryInfo's retryDelay ("38s") in the error
    body, else an HTTP Retry-After header in seconds. None if it does not say (or says nonsense:
    the body is whatever the server sent)."""
    body = err.details if isinstance(err.details, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    details = error.get("details") if isinstance(error.get("details"), list) else []
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(
                "google.rpc.RetryInfo"):
            seconds = _duration_s(detail.get("retryDelay"))
            if seconds is not None:
                return seconds
    headers = getattr(getattr(err, "response", None), "headers", None) or {}
    after = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    return _duration_s(after, unit="")


def _duration_s(value: Any, unit: str = "s") -> float | None:
    """Seconds from a protobuf JSON duration ("38s", "0.5s") or a bare number of seconds."""
    match = re.fullmatch(rf"\s*(\d+(?:\.\d*)?){unit}\s*", str(value)) if value is not None else None
    return float(match[1]) if match else None


def _name(value: Any) -> str:
    return getattr(value, "name", None) or str(value)


def _ratings(ratings: Any) -> str:
    """': HARM_CATEGORY_X (HIGH)' for the ratings that blocked, else the most probable one."""
    ratings = list(ratings or [])
    if not ratings:
        return ""
    blocked = [r for r in ratings if getattr(r, "blocked", False)] or ratings[:1]
    return ": " + ", ".join(f"{_name(r.category)} ({_name(r.probability)})" for r in blocked)
