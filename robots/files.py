"""Files a user hands to erarm (plans, configs, scenes, calibrations, images) and files it writes
for them. Each is checked before anything reads or writes it, so a wrong path is one line and
exit 2: a missing file, a directory, a FIFO (reading one blocks until a writer comes), a device
(reading /dev/zero never ends), a symlink loop, an unreadable or oversized file, text that is not
UTF-8; and, for outputs, a folder that does not exist or a name that is a directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from erarm.robots.errors import ConfigError

MAX_INPUT_BYTES = 64 * 1024 * 1024  # far beyond any plan, config, scene or calibration


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


def check_input_file(path: str | Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """`path` if it is a regular, readable file of at most `max_bytes`; checked with stat, without
    opening it, so a FIFO or device never blocks."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as err:  # a symlink loop, a name too long, a file used as a folder
        raise ConfigError(f"{what} {path}: {_reason(err)}") from None
    except ValueError:  # a NUL byte in the name
        raise ConfigError(f"{what} {path!r}: not a valid path") from None
    kind = _kind(info.st_mode)
    if kind is not None:
        raise ConfigError(f"{what} {path} is {kind}, not a file")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{what} {path}: permission denied")
    if info.st_size > max_bytes:
        raise ConfigError(f"{what} {path} is {info.st_size:,} bytes; erarm reads at most "
                          f"{max_bytes:,}")
    return Path(path)


def read_input_bytes(path: str | Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a checked input file (see `check_input_file`)."""
    check_input_file(path, what, max_bytes)
    try:
        # non-blocking: a file swapped for a FIFO after the check still cannot hang the open
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as handle:
            kind = _kind(os.fstat(handle.fileno()).st_mode)
            if kind is not None:
                raise ConfigError(f"{what} {path} is {kind}, not a file")
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise ConfigError(f"{what} {path}: {_reason(err)}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{what} {path} is over {max_bytes:,} bytes; erarm reads at most "
                          f"{max_bytes:,}")
    return data


def read_input_text(path: str | Path, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """A checked input file as UTF-8 text (a byte-order mark is dropped)."""
    raw = read_input_bytes(path, what, max_bytes)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at "
                          f"offset {err.start})") from None


def check_output_file(path: str | Path, what: str) -> Path:
    """`path` if erarm may write a file there: not a directory or special file, in a folder that
    exists (or can be made under one that does) and is writable."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise ConfigError(f"{what} {path}: {_reason(err)}") from None
    except ValueError:
        raise ConfigError(f"{what} {path!r}: not a valid path") from None
    if info is not None:
        kind = _kind(info.st_mode)
        if kind is not None:
            raise ConfigError(f"{what} {path} is {kind}; give a file name")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{what} {path}: permission denied")
        return path
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # save_png makes the missing folders under the first that exists
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot write in {folder} (permission denied)")
    return path
