"""Every prompt erarm sends, as a text template (`$name` placeholders), shipped as package data."""

import json
import re
from importlib.resources import files
from string import Template

TASK_MARKER = re.compile(r"</?\s*task\s*>", re.IGNORECASE)


def data(name: str) -> object:
    """A JSON prompt asset, such as the robot functions' descriptions."""
    return json.loads(files(__name__).joinpath(name).read_text(encoding="utf-8"))


def task_as_data(task: str) -> str:
    """The operator's words as they sit between the templates' <task> markers: one line, and
    no marker of their own, so nothing in them can end the quoted block and speak as erarm."""
    return " ".join(TASK_MARKER.sub(" ", task).split())


def render(name: str, **values: object) -> str:
    """The template `prompts/<name>.txt` with its placeholders filled in (a `task` as data)."""
    text = files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    if "task" in values:
        values["task"] = task_as_data(str(values["task"]))
    return Template(text).substitute({key: str(value) for key, value in values.items()})
