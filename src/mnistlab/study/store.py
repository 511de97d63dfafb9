"""The study store: one SQLite file in the study folder, one row per finished run.

Only the driver writes it, one transaction per run, so a study killed at any moment holds
every run that finished and nothing half-written. Run folders keep each run's own files and
its epoch checkpoint, which is how an unfinished run resumes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..config import TrainConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    test INTEGER NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    history TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_meta(self, name: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             (name, json.dumps(value)))

    def get_meta(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def record(self, key: str, config: TrainConfig, test: bool, summary: dict[str, Any],
               history: list[dict[str, float]]) -> None:
        with self._db:  # one transaction: the row is there whole or not at all
            self._db.execute(
                "INSERT OR REPLACE INTO runs (key, config, test, status, summary, history, "
                "seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, json.dumps(config.to_dict()), int(test), summary["status"],
                 json.dumps(summary), json.dumps(history), float(summary.get("seconds") or 0)))

    def finished(self) -> dict[str, dict[str, Any]]:
        """key -> {"summary", "history", "status", "test"} for every recorded run."""
        out = {}
        for key, test, status, summary, history in self._db.execute(
                "SELECT key, test, status, summary, history FROM runs"):
            out[key] = {"test": bool(test), "status": status, "summary": json.loads(summary),
                        "history": json.loads(history)}
        return out
