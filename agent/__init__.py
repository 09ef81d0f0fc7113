"""erarm's agent: perceive, plan, validate, execute, verify."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("erarm")  # from the installed distribution's metadata
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
