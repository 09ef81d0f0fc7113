"""Every prompt erarm sends, as a text template (`$name` placeholders), shipped as package data."""

import json
from importlib.resources import files
from string import Template


def data(name: str) -> object:
    """A JSON prompt asset, such as the robot functions' descriptions."""
    return json.loads(files(__name__).joinpath(name).read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """The template `prompts/<name>.txt` with its placeholders filled in."""
    text = files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return Template(text).substitute({key: str(value) for key, value in values.items()})
