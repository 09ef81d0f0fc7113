"""Drivers, found through entry points: robots under `erarm.robots` (each opens a workcell) and
cameras under `erarm.cameras`. The simulator registers the same way a third-party plugin does:

    [project.entry-points."erarm.robots"]
    myarm = "myarm_erarm:open_workcell"  # open_workcell(**options) -> erarm.robots.base.Workcell
    [project.entry-points."erarm.cameras"]
    mycam = "myarm_erarm:open_camera"  # open_camera(**options) -> erarm.robots.base.Camera

A driver may carry an `options` attribute, a pydantic model of its keyword options: then erarm
checks them before calling it (one-line errors naming the option) and `erarm robots` / `erarm
cameras` list them with their types, defaults and descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from erarm.robots.base import Camera, Workcell
from erarm.robots.errors import ConfigError

GROUPS = {"robot": "erarm.robots", "camera": "erarm.cameras"}
Kind = Literal["robot", "camera"]


class OptionInfo(BaseModel):
    name: str
    type: str
    default: str | None  # None: required
    help: str = ""


class DriverInfo(BaseModel):
    kind: Kind
    name: str
    entry_point: str  # module:attribute
    package: str  # the distribution that registered it, with its version
    summary: str = ""
    options: list[OptionInfo] = []
    problem: str | None = None  # why it cannot be loaded (a missing dependency, say)


def _entry_points(kind: Kind) -> list[EntryPoint]:
    return sorted(entry_points(group=GROUPS[kind]), key=lambda ep: ep.name)


def available(kind: Kind = "robot") -> list[str]:
    return [ep.name for ep in _entry_points(kind)]


def _type_name(annotation: object) -> str:
    generic = getattr(annotation, "__args__", None)
    text = str(annotation) if generic else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "").replace("pathlib.", "").replace("NoneType", "None")


def _options(factory: Callable) -> list[OptionInfo]:
    model = getattr(factory, "options", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [OptionInfo(name=name, type=_type_name(field.annotation),
                       default=None if field.is_required() else repr(field.get_default(
                           call_default_factory=True)),
                       help=field.description or "")
            for name, field in model.model_fields.items()]


def describe(kind: Kind) -> list[DriverInfo]:
    """Every installed driver of a kind, loaded to read its options; one that fails to load is
    listed with the reason."""
    drivers = []
    for ep in _entry_points(kind):
        dist = ep.dist
        info = DriverInfo(kind=kind, name=ep.name, entry_point=ep.value,
                          package=f"{dist.name} {dist.version}" if dist else "?")
        try:
            factory = ep.load()
        except Exception as err:  # a plugin's own import problem, reported rather than raised
            info.problem = f"{type(err).__name__}: {err}"
        else:
            info.summary = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ \
                else ""
            info.options = _options(factory)
        drivers.append(info)
    return drivers


def _factory(kind: Kind, name: str) -> Callable:
    matches = [ep for ep in _entry_points(kind) if ep.name == name]
    if not matches:
        known = ", ".join(available(kind)) or "none (is erarm installed?)"
        raise ConfigError(f"unknown {kind} {name!r}; installed: {known}")
    try:
        return matches[0].load()
    except ImportError as err:
        raise ConfigError(f"the {name} {kind} driver cannot be loaded: {err}") from None


def check_options(model: type[BaseModel], options: dict[str, Any], what: str) -> BaseModel:
    """Options validated against a driver's model; the first problem as a one-line error."""
    try:
        return model.model_validate(options)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ConfigError(f"{what} option {where}: {first['msg']}") from None


def _open(kind: Kind, name: str, options: dict[str, Any]) -> Any:
    factory = _factory(kind, name)
    model = getattr(factory, "options", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        options = dict(check_options(model, options, f"{name} {kind}"))
    return factory(**options)


def open_workcell(name: str, **options: Any) -> Workcell:
    """Open the named robot driver's workcell; unknown names get the list of installed ones."""
    return _open("robot", name, options)


def open_camera(name: str, **options: Any) -> Camera:
    """Open the named camera driver."""
    return _open("camera", name, options)
