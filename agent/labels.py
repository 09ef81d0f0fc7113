"""The small vocabulary shared between seeing and planning: colour names, object kinds and their
synonyms, which kinds hold things, and how a spoken name matches a perceived label."""

from __future__ import annotations

import re

# Hue centres on OpenCV's 0-180 scale for everyday colour names.
COLOUR_HUES: dict[str, float] = {
    "red": 0, "orange": 14, "yellow": 27, "green": 62,
    "cyan": 92, "blue": 114, "purple": 137, "pink": 164,
}
KIND_SYNONYMS: dict[str, str] = {"block": "block", "cube": "block", "bowl": "bowl"}
# kinds that hold things (not "box": a cereal box is a solid)
CONTAINER_WORDS = ("bowl", "container", "basket", "tray", "plate", "pan", "pot", "bin", "crate",
                   "dish")
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


def is_container(label: str) -> bool:
    """Whether a label names something that holds things ('green bowl', 'cups')."""
    return any(word.rstrip("s") in CONTAINER_WORDS for word in label.lower().split())


def with_kind(label: str, container: bool) -> str:
    """The label with its kind word made a bowl's or a block's, for an object whose shape says
    what it is: 'green block' -> 'green bowl'. A label that already agrees, or names no block
    or bowl (a 'plate' may look flat), is kept."""
    if is_container(label) == container or not any(_block_or_bowl(w) for w in label.split()):
        return label
    kind = "bowl" if container else "block"
    return " ".join(kind if _block_or_bowl(word) else word for word in label.split())


def _block_or_bowl(word: str) -> bool:
    return word.lower().rstrip("s") in KIND_SYNONYMS


# What people call a group of things, and words in the labels of the things in it: "all the
# fruit" over a perceived "lemon" and "apple". A group word not here still names every label
# that has it ("all the cans": the "soda can" and the "soup can").
GROUPS: dict[str, tuple[str, ...]] = {
    "fruit": ("apple", "orange", "lemon", "lime", "banana", "pear", "peach", "plum", "grape",
              "strawberry", "mango", "kiwi", "tangerine", "apricot", "cherry", "fruit"),
    "toy": ("duck", "teddy", "bear", "ball", "doll", "car", "plush", "toy", "wooden block"),
    "drink": ("soda", "water", "juice", "milk", "coke", "beer", "drink"),
    "food": ("cereal", "bread", "roll", "soup", "pasta", "rice", "biscuit", "cracker", "snack"),
    "condiment": ("ketchup", "mustard", "mayonnaise", "sauce", "salt", "pepper", "condiment"),
}
GROUP_WORDS = {"fruit": "fruit", "fruits": "fruit", "toys": "toy", "toy": "toy",
               "drinks": "drink", "drink": "drink", "beverages": "drink", "food": "food",
               "groceries": "food", "condiments": "condiment", "sauces": "condiment"}


def in_group(group: str, label: str) -> bool:
    """Whether a perceived label belongs to a group people name ('fruit' over 'lemon'; 'cans'
    over 'soup can'); containers belong to none."""
    if is_container(label):
        return False
    words = label.lower()
    category = GROUP_WORDS.get(group.lower())
    if category is None:
        return group.lower().rstrip("s") in [w.rstrip("s") for w in words.split()]
    return any(re.search(rf"\b{re.escape(member)}s?\b", words) for member in GROUPS[category])
