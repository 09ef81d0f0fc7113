"""A Gemini conversation in which the model calls the robot's functions (Robotics-ER 2's
orchestration): the task, the image and the function declarations go first; each later request
sends the whole history back with the results of the model's last calls.

The model's own turns go back exactly as they came, thought signatures included (Gemini 3
models refuse a history whose function calls lost theirs), and each result answers its call by
name and id. A look's image rides inside its function response on models that take multimodal
function responses (Gemini 3, Robotics-ER 2), else as an image part after the responses.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from google.genai import types

from erarm.agent.brains.base import ModelTurn, PlanRequest, ToolCall, ToolResult
from erarm.agent.errors import ReplyError
from erarm.agent.redaction import redact
from erarm.robots.base import Frame

if TYPE_CHECKING:
    from erarm.agent.brains.gemini import GeminiBrain


class GeminiConversation:
    def __init__(self, brain: GeminiBrain, request: PlanRequest, frame: Frame):
        from erarm.agent.brains.gemini import task_prompt, uses_thinking_level

        self._brain = brain
        self._prompt = task_prompt("tools", request)
        self._history: list[types.Content] = [types.Content(
            role="user", parts=[brain.image_part(frame), types.Part(text=self._prompt)])]
        self._images_inside = uses_thinking_level(brain.settings.model)
        self.turns = 0

    def start(self) -> ModelTurn:
        first = self._history[0].parts[0]
        return self._ask({"prompt": self._prompt, "image_bytes": [len(first.inline_data.data)]})

    def reply(self, results: list[ToolResult]) -> ModelTurn:
        responses, images, sizes = [], [], []
        for result in results:
            response = types.FunctionResponse(id=result.call.id, name=result.call.name,
                                              response=result.response)
            if result.image is not None:
                image = self._brain.image_part(result.image)
                sizes.append(len(image.inline_data.data))
                if self._images_inside:
                    response.parts = [types.FunctionResponsePart.from_bytes(
                        data=image.inline_data.data, mime_type=image.inline_data.mime_type)]
                else:
                    images.append(image)
            responses.append(types.Part(function_response=response))
        self._history.append(types.Content(role="user", parts=responses + images))
        return self._ask({"results": [{"name": r.call.name, "id": r.call.id,
                                       "response": r.response} for r in results],
                          "image_bytes": sizes})

    def tell(self, message: str, frame: Frame) -> ModelTurn:
        image = self._brain.image_part(frame)
        self._history.append(types.Content(role="user", parts=[image, types.Part(text=message)]))
        return self._ask({"prompt": message, "image_bytes": [len(image.inline_data.data)]})

    def again(self) -> ModelTurn:
        """The last request once more (its reply could not be used); the history is as it was."""
        return self._ask({"again": True})

    def _ask(self, sent: dict) -> ModelTurn:
        brain = self._brain
        self.turns += 1
        record = {"kind": "tools", "model": brain.settings.model, "turn": self.turns, **sent}

        def read(response: Any) -> tuple[ModelTurn, dict]:
            parts, finish = brain.reply_parts(response, "tools")
            text = redact("".join(p.text for p in parts if p.text and not p.thought))
            calls = [ToolCall(id=p.function_call.id and redact(p.function_call.id),
                              name=redact(p.function_call.name or ""),
                              args=redacted_args(dict(p.function_call.args or {})))
                     for p in parts if p.function_call is not None]
            if not calls and not text.strip():
                raise ReplyError(f"the Gemini API returned an empty reply (finish reason "
                                 f"{finish})")
            self._history.append(response.candidates[0].content)  # signatures and all
            turn = ModelTurn(text=text, calls=calls)
            return turn, {"reply": text, "calls": [c.model_dump() for c in calls],
                          "finish_reason": finish}

        return brain.exchange(self._history, "tools", record, read)


def redacted_args(args: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments with any secret in them masked (a server may echo the key back)."""
    return json.loads(redact(json.dumps(args)))
