"""The Gemini API's reply bodies, as the REST endpoint sends them (shared with the tests'
loopback server)."""

from __future__ import annotations

STATES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
          409: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


def text_body(text: str, finish: str = "STOP") -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": finish}]}


def calls_body(text: str, calls: list[dict], signature: str) -> dict:
    """A model turn: its words, then its function calls, the first carrying the turn's thought
    signature (as Gemini 3 models sign their calls)."""
    parts = [{"text": text}] if text else []
    for index, call in enumerate(calls):
        part: dict = {"functionCall": call}
        if index == 0:
            part["thoughtSignature"] = signature
        parts.append(part)
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP"}]}


def error_body(status: int, message: str, state: str = "") -> dict:
    return {"error": {"code": status, "message": message,
                      "status": state or STATES.get(status, "UNKNOWN")}}


def rate_limit_body(retry_delay: str) -> dict:
    """A 429 as the Gemini API sends it when a quota runs out: the delay to wait is in a
    google.rpc.RetryInfo detail, next to the quota that was hit."""
    return {"error": {
        "code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "You exceeded your current quota, please check your plan and billing details. "
                   f"Please retry in {retry_delay}.",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]}}
