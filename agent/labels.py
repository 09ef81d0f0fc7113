"""The small vocabulary the local brain shares between seeing and planning: colour names, object
kinds and their synonyms, and how a spoken name matches a perceived label."""

from __future__ import annotations

import re

# Hue centres on OpenCV's 0-180 scale for everyday colour names.
COLOUR_HUES: dict[str, float] = {
    "red": 0, "orange": 14, "yellow": 27, "green": 62,
    "cyan": 92, "blue": 114, "purple": 137, "pink": 164,
}
KIND_SYNONYMS: dict[str, str] = {"block": "block", "cube": "block", "bowl": "bowl"}
_ARTICLES = re.compile(r"\b(the|a|an)\b")


def canonical(name: str) -> str:
    """'The Blue CUBE' -> 'blue block'."""
    words = _ARTICLES.sub(" ", name.lower()).split()
    return " ".join(KIND_SYNONYMS.get(word.rstrip("s"), word) if word.rstrip("s") in KIND_SYNONYMS
                    else word for word in words)


def matches(query: str, label: str) -> bool:
    """Whether a perceived label answers a query: every query word must be in the label, so
    'bowl' matches 'orange bowl' and 'blue block' matches 'blue block 2'."""
    wanted = canonical(query).split()
    have = canonical(label).split()
    return bool(wanted) and all(word in have for word in wanted)
