"""Find workcell drivers through the `erarm.robots` entry-point group (the simulator included)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from robots.base import Workcell
from robots.errors import ConfigError

GROUP = "erarm.robots"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def open_workcell(name: str, **options: Any) -> Workcell:
    """Open the named driver's workcell; unknown names get the list of installed ones."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(available()) or "none (is erarm installed?)"
        raise ConfigError(f"unknown robot {name!r}; installed: {known}")
    factory = matches[0].load()
    return factory(**options)
