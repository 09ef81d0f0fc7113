"""Reading .rrd files back in tests with rerun's own query API (its catalog server on loopback)."""

from __future__ import annotations

from pathlib import Path

import rerun as rr


class Rrd:
    """An .rrd file as rerun's catalog serves it: each entity's rows in the order logged (the
    `record` timeline), each with its `t`."""

    def __init__(self, path: Path):
        self._server = rr.server.Server(host="127.0.0.1", addr="127.0.0.1",
                                        datasets={"run": [str(path)]})
        self._dataset = self._server.client().get_dataset("run")
        self.columns = {c.name for c in self._dataset.schema().component_columns()}

    def rows(self, entity: str) -> list[dict]:
        """Rows where the entity has data, oldest first, keyed by component (`Points3D:labels`)."""
        table = self._dataset.filter_contents(entity).reader(index="record").to_arrow_table()
        prefix = f"{entity}:"
        rows = [{k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)} | {
            "t": row["t"].total_seconds()} for row in table.to_pylist()]
        return [r for r in rows if any(v is not None for k, v in r.items() if k != "t")]

    def static(self, entity: str, component: str):
        """What was logged for all time (the camera's calibration)."""
        table = self._dataset.filter_contents(entity).reader(index=None).to_arrow_table()
        column = f"{entity}:{component}"
        return next(v for v in table.column(column).to_pylist() if v is not None)

    def close(self) -> None:
        self._server.__exit__(None, None, None)
