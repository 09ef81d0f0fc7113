"""The flight record in rerun (the `rerun-sdk` package, extra `erarm[rerun]`), on one timeline
`t`, seconds since the run began (and `record`, the records in order, for those that came in
the same millisecond): the camera's image and depth under its calibrated pose, the
brain's points and boxes with their labels, the objects located in 3D in the robot frame, each
plan's path, every pose commanded and reached, the gripper's opening and holding, the log, the
plan's steps and the verdict.

It is fed the records as the recorder writes them (`Recorder.mirror`), so a run viewed live and
a flight record converted afterwards (`erarm replay DIR --rerun-save FILE.rrd`) are the same.
Positions are metres in the robot base frame (x forward, y left, z up), as erarm works inside.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from erarm.agent.recording.run_folder import RECORD
from erarm.robots.base import CameraCalibration
from erarm.robots.errors import ConfigError
from erarm.robots.files import read_input_text

CAMERA = "world/camera"
IMAGE = f"{CAMERA}/image"
FLUSH_TIMEOUT_S = 3.0
VIEWER_PORT = 9876  # where rerun's viewer listens for gRPC, spawned or already running
HTTP2_PREFACE, HTTP2_SETTINGS = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0x4
STREAMS = ("timeline.jsonl", "looks.jsonl", "robot.jsonl", "exchanges.jsonl", "live.jsonl")


class RerunOptions(BaseModel):
    """Where the recording goes: a viewer (spawned, or the one already listening on rerun's
    port), an .rrd file, or both."""

    spawn: bool = False
    save: Path | None = None

    @property
    def wanted(self) -> bool:
        return self.spawn or self.save is not None


def rerun_options(spawn: bool = False, save: Path | str | None = None) -> RerunOptions | None:
    """What `--rerun`/`--rerun-save` ask for, checked before anything moves (None: nothing)."""
    options = RerunOptions(spawn=spawn, save=Path(save) if save is not None else None)
    if not options.wanted:
        return None
    require_rerun()
    if options.save is not None:
        _check_writable(options.save)
    if spawn and not _viewer_listening() and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError(f"--rerun opens the viewer's window and there is no display: use "
                          f"--rerun-save FILE.rrd, or start a viewer first (`rerun --serve-web`"
                          f" listens on port {VIEWER_PORT})")
    return options


def one_line(err: BaseException) -> str:
    """An error of rerun's (Rust's, often several lines) as one line."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _check_writable(path: Path) -> None:
    """An .rrd file that can be written: a new file or a regular one (never a FIFO, a device
    or a folder), in a folder that exists or can be made and is writable."""
    if path.suffix != ".rrd":
        raise ConfigError(f"--rerun-save takes a file ending in .rrd, got {str(path)!r}")
    if path.is_dir():
        raise ConfigError(f"--rerun-save {str(path)!r} is a folder: give a file in it")
    if path.exists() and not path.is_file():
        raise ConfigError(f"--rerun-save {str(path)!r} is not a regular file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--rerun-save: cannot make {str(path.parent)!r}: "
                          f"{err.strerror or err}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--rerun-save: cannot write {str(path)!r}")


def _viewer_listening() -> bool:
    """A viewer already on rerun's port here, which `spawn` streams to instead of starting one.
    What listens there must answer as one (gRPC: an HTTP/2 server's first SETTINGS frame), or
    streaming to it could hold the run's end for as long as it stays silent."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex(("127.0.0.1", VIEWER_PORT)) != 0:
            return False
        try:
            probe.sendall(HTTP2_PREFACE)
            frame = probe.recv(9)
        except OSError:
            frame = b""
    if len(frame) < 4 or frame[3] != HTTP2_SETTINGS:
        raise ConfigError(f"something listens on port {VIEWER_PORT} but does not answer as a "
                          "rerun viewer: stop it, or use --rerun-save FILE.rrd")
    return True


def _spawn(rr: Any, stream: Any) -> None:
    """The viewer the package ships, found beside this Python when its folder is not on PATH
    (a virtualenv not activated)."""
    beside = Path(sys.executable).parent / "rerun"
    path = shutil.which("rerun") or (str(beside) if beside.exists() else None)
    try:
        rr.spawn(connect=False, recording=stream, executable_path=path)
    except (RuntimeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"could not start the rerun viewer: {first}") from None


def require_rerun() -> Any:
    """The rerun module, or a one-line `ConfigError` naming the extra."""
    if not os.environ.get("ERARM_DEBUG"):  # rerun's own log lines: erarm says it in one
        os.environ.setdefault("RUST_LOG", "off")
    try:
        import rerun
    except ImportError:
        raise ConfigError("--rerun needs rerun-sdk: pip install 'erarm[rerun]'") from None
    return rerun


class RerunView:
    """One run as one rerun recording (`name` is its id); `add` each record, `close` at the end."""

    def __init__(self, options: RerunOptions, name: str, record_dir: Path):
        rr = self.rr = require_rerun()
        self.record_dir = record_dir  # the media the records name are here
        self.stream = rr.RecordingStream("erarm", recording_id=name)
        sinks = []
        if options.spawn:
            _spawn(rr, self.stream)
            sinks.append(rr.GrpcSink())
        try:
            if options.save is not None:
                _check_writable(options.save)
                sinks.append(rr.FileSink(str(options.save)))
            self.stream.set_sinks(*sinks)
        except (OSError, RuntimeError) as err:
            raise ConfigError(f"--rerun-save: cannot write {str(options.save)!r}: "
                              f"{one_line(err)}") from None
        self.stream.send_recording_name(name)
        self.stream.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self._reached: list[list[float]] = []  # the tool's path so far
        self._records = 0

    def _media(self, name: str) -> Path:
        """A file the record names, which must lie inside the record (a crafted record cannot
        pull another file into the recording) and be there."""
        root = self.record_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            raise ConfigError(f"the record names {name!r}, which is outside {self.record_dir}")
        if not path.is_file():
            raise ConfigError(f"the record names {name!r}, which is missing from it")
        return path

    def _at(self, t_s: float) -> None:
        self._records += 1
        self.stream.set_time("record", sequence=self._records)
        self.stream.set_time("t", duration=t_s)

    def _log(self, entity: str, *archetypes: Any) -> None:
        self.stream.log(entity, *archetypes)

    def calibration(self, calibration: CameraCalibration) -> None:
        """The camera where its calibration puts it, so its images sit in the 3D view."""
        rr = self.rr
        k = [[calibration.fx, 0, calibration.cx], [0, calibration.fy, calibration.cy], [0, 0, 1]]
        self.stream.log(CAMERA, rr.Pinhole(image_from_camera=k, resolution=[
            calibration.width, calibration.height], image_plane_distance=0.15), static=True)
        if calibration.camera_to_base is not None:
            pose = np.array(calibration.camera_to_base)
            self.stream.log(CAMERA, rr.Transform3D(translation=pose[:3, 3],
                                                   mat3x3=pose[:3, :3]), static=True)

    def add(self, stream: str, record: dict) -> None:
        """One record of the flight record: `stream` is the file it is written to."""
        self._at(float(record.get("t", 0.0)))
        handler = {"timeline.jsonl": self._event, "looks.jsonl": self._look,
                   "robot.jsonl": self._command, "exchanges.jsonl": self._exchange,
                   "live.jsonl": self._streamed, "plans": self._plan}.get(stream)
        if handler is not None:
            handler(record)

    def verdict(self, result: dict) -> None:
        """How the run ended, from its result."""
        rr = self.rr
        self._at(float(result.get("timings", {}).get("total_s", 0)))
        truth = result.get("ground_truth") or {}
        lines = [f"success: {result.get('success')}" + (
                     f" ({truth['reason']})" if truth.get("reason") else ""),
                 f"verified: {result.get('verified')} ({result.get('verification', '')})",
                 f"exit code: {result.get('exit_code')}"]
        if result.get("error"):
            lines.append(f"error: {result['error']}")
        self._log("verdict", rr.TextDocument("\n\n".join(lines), media_type="text/markdown"))
        self._log("log", rr.TextLog("; ".join(lines), level=rr.TextLogLevel.INFO))

    def finish(self, result: dict | None) -> None:
        """The verdict (when there is a result), then everything out."""
        if result is not None:
            self.verdict(result)
        self.close()

    def close(self) -> None:
        """Everything out, waiting a few seconds at most for a slow viewer (the .rrd file is
        written as it goes)."""
        try:
            self.stream.flush(timeout_sec=FLUSH_TIMEOUT_S)
        finally:
            self.stream.disconnect()

    # -- each stream -------------------------------------------------------------------------
    def _event(self, record: dict) -> None:
        self._log("log", self.rr.TextLog(record["event"], level=self.rr.TextLogLevel.INFO))

    def _exchange(self, record: dict) -> None:
        said = record.get("error") or record.get("reply", "")
        said = said if isinstance(said, str) else json.dumps(said)
        self._log("model", self.rr.TextLog(f"{record.get('kind')}: {record.get('question')}"
                                           f" -> {said[:400]}"))

    def _streamed(self, record: dict) -> None:
        rr = self.rr
        if record.get("sent") == "frame" and record.get("file"):
            self._log(IMAGE, rr.EncodedImage(path=self._media(record["file"])))
        text = record.get("text")
        if text:
            who = {"text": "the model", "heard": "heard"}.get(record.get("got"), "the operator")
            self._log("live", rr.TextLog(f"{who}: {text}"))

    def _look(self, record: dict) -> None:
        rr = self.rr
        width, height = record["width"], record["height"]
        self._log(IMAGE, rr.EncodedImage(path=self._media(record["image"])))
        if record.get("depth"):
            depth = cv2.imread(str(self._media(record["depth"])), cv2.IMREAD_UNCHANGED)
            if depth is not None:
                self._log(f"{CAMERA}/depth", rr.DepthImage(depth, meter=1000.0))
        points, boxes = record["points"], record["boxes"]
        self._log(f"{IMAGE}/points", rr.Points2D(
            [[p["point"][1] * width / 1000, p["point"][0] * height / 1000] for p in points],
            labels=[p["label"] for p in points], radii=4.0))
        self._log(f"{IMAGE}/boxes", rr.Boxes2D(
            array=np.array([[b["box_2d"][1] * width / 1000, b["box_2d"][0] * height / 1000,
                             b["box_2d"][3] * width / 1000, b["box_2d"][2] * height / 1000]
                            for b in boxes]).reshape(-1, 4),
            array_format=rr.Box2DFormat.XYXY, labels=[b["label"] for b in boxes]))
        objects = record["objects"]
        self._log("world/objects", rr.Points3D(
            [[v / 1000 for v in o["position_mm"]] for o in objects],
            radii=[max(o.get("radius_mm", 0), 5) / 1000 for o in objects],
            labels=[o["label"] for o in objects]))

    def _plan(self, record: dict) -> None:
        rr = self.rr
        steps = [a for a in record.get("actions", []) if a.get("target")]
        targets = [[a["target"][k] / 1000 for k in ("x_mm", "y_mm", "z_mm")] for a in steps]
        self._log("world/plan", rr.LineStrips3D([targets] if targets else []))
        self._log("world/plan/targets", rr.Points3D(
            targets, labels=[f"{a['step']}" for a in steps], radii=0.004))
        rows = ["| step | call | target (mm) | why |", "|---|---|---|---|"]
        for action in record.get("actions", []):
            call, target = action.get("call") or {}, action.get("target")
            where = "" if not target else ", ".join(
                f"{target[k]:.0f}" for k in ("x_mm", "y_mm", "z_mm"))
            rows.append(f"| {action['step']} | {_call_text(call)} | {where} | "
                        f"{action.get('why', '')} |")
        self._log("plan", rr.TextDocument(f"## round {record.get('round', '')}: "
                                          f"{record.get('task', '')}\n\n" + "\n".join(rows),
                                          media_type="text/markdown"))

    def _command(self, record: dict) -> None:
        rr = self.rr
        command = record["command"]
        if command == "set_gripper":
            self._log("gripper/opening_mm", rr.Scalars(record["opening_mm"]))
            self._log("gripper/holding", rr.Scalars(float(bool(record["holding"]))))
            return
        if "commanded" in record:
            commanded = record["commanded"]
            self._log("world/tool/commanded", rr.Points3D(
                [[commanded[k] for k in "xyz"]], radii=0.006, labels=[record.get("context", "")]))
        reached = record.get("reached")
        if reached:
            self._reached.append([reached[k] for k in "xyz"])
            self._log("world/tool/reached", rr.Points3D([self._reached[-1]], radii=0.006))
            self._log("world/tool/path", rr.LineStrips3D([self._reached]))


def _call_text(call: dict) -> str:
    args = call.get("args") or []
    values = args.values() if isinstance(args, dict) else args
    return f"{call.get('function', '')}({', '.join(json.dumps(v) for v in values)})"


class _Entry(BaseModel):
    """A line of any of the flight record's files."""

    model_config = ConfigDict(extra="allow")
    t: float = 0.0


def _read(path: Path, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(read_input_text(path, "flight record"))
    except ValidationError as err:
        raise ConfigError(f"{path}: {err.errors()[0]['msg']}") from None


def convert(folder: Path, options: RerunOptions) -> int:
    """A run folder's flight record as a rerun recording; how many records it held."""
    from erarm.agent.recording.replay import read_jsonl

    record_dir = folder / RECORD
    entries: list[tuple[float, str, dict]] = [
        (entry.t, stream, entry.model_dump()) for stream in STREAMS
        for entry in read_jsonl(record_dir / stream, _Entry)]
    for path in sorted((record_dir / "plans").glob("round-*.json")):
        entry = _read(path, _Entry)
        entries.append((entry.t, "plans", entry.model_dump()))
    calibration = folder / "calibration.json"
    result = folder / "result.json"
    view = RerunView(options, folder.name, record_dir)
    if calibration.exists():
        view.calibration(_read(calibration, CameraCalibration))
    for t, stream, record in sorted(entries, key=lambda entry: entry[0]):
        try:
            view.add(stream, record)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ConfigError(f"{record_dir / stream}: the record at t={t:g} s is damaged "
                              f"({type(err).__name__}: {err})") from None
    view.finish(_read(result, _Entry).model_dump() if result.exists() else None)
    return len(entries)
