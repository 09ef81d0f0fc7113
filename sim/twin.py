"""The simulator's side of a twin (`erarm.robots.twin`): each perceived object stood in as the
simulator's own model of it when its label names a kind it has ("... bowl": a bowl scaled to the
measured height, in the named colour nearest the one seen), else as a solid box of its footprint
and height in the colour it was seen in."""

from __future__ import annotations

from erarm.robots.twin import TwinObject, TwinScene
from erarm.sim.objects import BLOCK_SIZE_M, BOWL_HEIGHT_M, BOWL_RIM_RADIUS_M, COLOURS
from erarm.sim.scene import SceneObject, SceneSpec, Solid

# a model's standard width across and height, metres
STANDARD = {"block": (BLOCK_SIZE_M, BLOCK_SIZE_M),
            "bowl": (2 * BOWL_RIM_RADIUS_M, BOWL_HEIGHT_M)}
RESTING_ON_M = 0.01  # an object whose base is higher than this rests on another


def _chroma(rgb: tuple[float, float, float]) -> tuple[float, ...]:
    """A colour with its brightness divided out: shade does not change it."""
    top = max(max(rgb), 1e-6)
    return tuple(c / top for c in rgb)


def _nearest_colour(rgb: tuple[int, int, int]) -> str:
    seen = _chroma(rgb)
    return min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in
                                             zip(seen, _chroma(COLOURS[name]), strict=True)))


def _known(obj: TwinObject) -> SceneObject | None:
    """The simulator's model of the kind the label names, in the named colour nearest the one
    seen (not the label's: the twin shows what the camera saw, a misread label included)."""
    kind = obj.label.split()[-1] if obj.label.split() else ""
    if kind not in STANDARD:
        return None
    colour = _nearest_colour(obj.rgb)
    across, height = STANDARD[kind]
    # the scale from its top, which the depth camera measures well; a block resting on
    # something reaches higher than its own height, and its width (which a box seen at a slant
    # overstates) bounds it then
    scale = obj.top_mm / 1000 / height
    if kind == "block":
        scale = min(scale, obj.across_mm / 1000 / across)
    size = min(1.3, max(0.7, scale))
    base = obj.top_mm / 1000 - height * size
    return SceneObject(kind=kind, colour=colour, x=obj.x_mm / 1000, y=obj.y_mm / 1000,
                       size=size, z=base if base > RESTING_ON_M else 0.0)


def twin_layout(twin: TwinScene) -> SceneSpec:
    """The twin's table: known things as the simulator's models, the rest as solids."""
    objects, solids = [], []
    for obj in twin.objects:
        known = _known(obj)
        if known is not None:
            objects.append(known)
        else:
            solids.append(Solid(label=obj.label, x=obj.x_mm / 1000, y=obj.y_mm / 1000,
                                across=obj.across_mm / 1000,
                                height=max(obj.top_mm / 1000, 0.005),
                                rgb=tuple(c / 255 for c in obj.rgb)))
    return SceneSpec(objects=objects, solids=solids)
