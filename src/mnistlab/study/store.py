"""The study store: one SQLite file in the study folder, one row per finished run.

Only the driver writes it, one transaction per run, so a study killed at any moment holds
every run that finished and nothing half-written. Run folders keep each run's own files and
its epoch checkpoint, which is how an unfinished run resumes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..errors import MnistlabError
from ..records import EpochRecord, RunSummary

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


MOVE_AWAY = ("move this file away and run the same command again (runs already written are "
             "read back from their folders), or use another --out")


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:  # read-only, a full disk: not damage
            raise MnistlabError(f"{self.path}: cannot be opened for writing ({exc}); a study "
                                "writes in its folder: free space or fix the permissions, or "
                                "copy the folder somewhere writable and give that as --out "
                                "(finished runs are kept)", exit_code=1) from None
        except sqlite3.DatabaseError as exc:
            raise MnistlabError(f"{self.path}: not a study database, or a damaged one ({exc}); "
                                f"{MOVE_AWAY}") from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Rows that are not what this code writes (a hand-edited or foreign file): one line."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "no such" not in str(exc):  # a disk error or a lock, not a table of another shape
                raise MnistlabError(f"{self.path}: cannot be read ({exc}); free space or fix the "
                                    "permissions and run the same command again (finished runs "
                                    "are kept)", exit_code=1) from None
            raise MnistlabError(f"{self.path}: a damaged study database ({exc}); {MOVE_AWAY}"
                                ) from None
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise MnistlabError(f"{self.path}: a damaged study database ({type(exc).__name__}: "
                                f"{str(exc)[:100]}); {MOVE_AWAY}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identity(self) -> str | None:
        """The identity of the study this store belongs to (None in stores made before it
        was recorded)."""
        return self._meta("identity", str)

    def identity_settings(self) -> list[Any] | None:
        """What the identity was made from (study.run.identity_settings; None in stores made
        before it was recorded, or not readable): kept only to say what changed when a study
        file no longer matches its folder, so a damaged row never refuses a study."""
        try:
            return self._meta("identity_settings", list)
        except MnistlabError:
            return None

    def set_identity(self, identity: str, settings: list[Any] | None = None) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES ('identity', ?)",
                    (json.dumps(identity),), "record which study it holds")
        if settings is not None:
            self._write("INSERT OR REPLACE INTO meta VALUES ('identity_settings', ?)",
                        (json.dumps(settings),), "record which study it holds")

    def key_placement(self) -> dict[str, Any] | None:
        """The data_dir and device this study's run keys are made with (None in stores made
        before it was recorded; study.run.key_placement)."""
        return self._meta("key_placement", dict)

    def _meta(self, name: str, kind: type) -> Any:
        with self._reading():
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            value = json.loads(row[0]) if row else None
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name} is {type(value).__name__}, not {kind.__name__}")
            return value

    def dataset_folders(self) -> dict[str, str]:
        """The folder each relative dataset path named when the study first read it
        (data.dataset.relative_folders); empty in stores made before it was recorded. An
        entry edited into another shape is left out (recorded again), not a traceback."""
        folders = self._meta("dataset_folders", dict) or {}
        return {k: v for k, v in folders.items() if isinstance(v, str)}

    def set_dataset_folders(self, folders: dict[str, str]) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES ('dataset_folders', ?)",
                    (json.dumps(folders),), "record where its data is")

    def data_digests(self) -> dict[str, str]:
        """The digest (data.dataset.folder_digest) of each dataset given by its folder, as
        the study first read it; an entry edited into another shape is recorded again."""
        digests = self._meta("data_digests", dict) or {}
        return {k: v for k, v in digests.items() if isinstance(v, str)}

    def set_data_digests(self, digests: dict[str, str]) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES ('data_digests', ?)",
                    (json.dumps(digests),), "record which data it read")

    def set_key_placement(self, placement: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES ('key_placement', ?)",
                    (json.dumps(placement),), "record how its runs are named")

    def entries(self) -> list[tuple[str, dict[str, Any], bool]]:
        """(key, settings as recorded, whether it scored the test set) of every run."""
        with self._reading():
            entries = [(k, json.loads(c), bool(test))
                       for k, c, test in self._db.execute("SELECT key, config, test FROM runs")]
            if not all(isinstance(k, str) and isinstance(c, dict) for k, c, _ in entries):
                raise TypeError("a run's key or settings are not what a study writes")
            return entries

    def record(self, key: str, config: TrainConfig, test: bool, summary: RunSummary,
               history: list[EpochRecord]) -> None:
        self._write("INSERT OR REPLACE INTO runs (key, config, test, status, summary, history, "
                    "seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, json.dumps(config.to_dict()), int(test), summary.status,
                     json.dumps(summary.to_dict()), json.dumps([r.to_row() for r in history]),
                     float(summary.seconds or 0)), f"record run {key}")

    def _write(self, sql: str, values: tuple[Any, ...], what: str) -> None:
        try:
            with self._db:  # one transaction: the row is there whole or not at all
                self._db.execute(sql, values)
        except sqlite3.OperationalError as exc:  # "database or disk is full", read-only
            raise MnistlabError(f"{self.path}: cannot {what} ({exc}); free space or fix the "
                                "permissions and run the same command again (finished runs "
                                "are kept)", exit_code=1) from None

    def finished(self) -> dict[str, StoredRun]:
        """Every recorded run, by key."""
        out = {}
        with self._reading():
            for key, test, summary, history in self._db.execute(
                    "SELECT key, test, summary, history FROM runs"):
                out[key] = StoredRun(RunSummary.from_dict(json.loads(summary)),
                                     [EpochRecord.from_row(r) for r in json.loads(history)],
                                     bool(test))
        return out


@dataclass(frozen=True)
class StoredRun:
    """A finished run as the study store holds it."""

    summary: RunSummary
    history: list[EpochRecord]
    test: bool
