"""A Gemini Robotics-ER emulator for the simulator: a Gemini-compatible REST server that answers
erarm's questions from the simulator's ground truth with a seeded model of how a real VLM errs.
It lives with the simulator; the agent only talks HTTP to it."""

from erarm.sim.emulator.server import Emulator, EmulatorStats
from erarm.sim.emulator.settings import EmulatorSettings

__all__ = ["Emulator", "EmulatorSettings", "EmulatorStats"]
