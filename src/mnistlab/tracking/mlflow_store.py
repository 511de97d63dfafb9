"""MLflow: runs, their settings, per-epoch metrics, files and the doctor's findings in a
tracking store, through `MlflowClient` (no global active run: a library should not leave one).

Where: `--mlflow-uri`, else `MLFLOW_TRACKING_URI`, else an SQLite store inside the output
folder (`OUT/mlflow.db`, files in `OUT/mlartifacts`; no server needed, `mlflow ui
--backend-store-uri sqlite:///OUT/mlflow.db` shows it). A server named explicitly must answer
within a few seconds, before anything trains; one that stops answering later is warned about
once, and logging stops while training goes on (the run folder keeps everything).

A run as mnistlab logs it:

    params     every setting (config.toml), lists as 128,64
    metrics    per epoch, step = epoch: train_loss, train_loss_eval, val_loss,
               train_accuracy_running, train_accuracy_eval, val_accuracy, lr; at the end
               final/val_accuracy, final/test_accuracy, ... (summary.json)
    tags       mnistlab.version, dataset, seed, mnistlab.status, mnistlab.findings (codes),
               mnistlab.finding.<code> (its title), mnistlab.folder; the description (note)
               lists the findings with evidence and fix
    artifacts  config.toml, summary.json, metrics.csv, curves.png, confusion.png, model.pt
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import os
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .. import files, runs
from ..config import MLFLOW_ARTIFACTS, MLFLOW_STORE, PLACEMENT, TrainConfig, load_config
from ..errors import MnistlabError, first_few, shown_url
from ..messages import after_colon, t
from ..records import EpochRecord, Finding, RunResult, RunSummary, code_version
from ..training import Hook, Run

INSTALL_HINT = 'pip install "mnistlab[tracking]"'
STORE_FILE, ARTIFACTS = MLFLOW_STORE, MLFLOW_ARTIFACTS  # the embedded store in a folder
ANSWER_SECONDS = 3.0  # how long an explicit tracking server gets to answer, before training
RUN_FILES = ("config.toml", "summary.json", "metrics.csv", "curves.png", "confusion.png",
             "model.pt")
EPOCH_METRICS = ("train_loss", "train_loss_eval", "val_loss", "train_accuracy_running",
                 "train_accuracy_eval", "val_accuracy", "lr")
FINAL_METRICS = ("val_accuracy", "val_loss", "train_accuracy_eval", "train_accuracy_running",
                 "test_accuracy", "test_loss", "seconds", "epochs")
FOLDER_TAG = "mnistlab.folder"  # the run folder (or study, search) a run was logged from
KEY_TAG = "mnistlab.key"  # a run's identity within its study or search
PARENT_TAG = "mlflow.parentRunId"
Warn = Callable[[str], None]


def require_mlflow() -> Any:
    try:
        import mlflow  # noqa: F401 - the extra's presence is the question
        from mlflow import MlflowClient
    except ImportError:
        raise MnistlabError(f"--log mlflow: MLflow is not installed; {INSTALL_HINT}") from None
    for name in ("mlflow", "alembic"):  # table creation and run links are not ours to print
        logging.getLogger(name).setLevel(logging.WARNING)
    # a database store that cannot be opened: one line now, not ten retries over 100 s, each
    # with a warning (the value is read at each call)
    import mlflow.store.db.utils as db_utils

    db_utils.MAX_RETRY_COUNT = 1
    # its "SQLAlchemy database error" record carries a 60-line traceback; ours is one line
    logging.getLogger(db_utils.__name__).setLevel(logging.CRITICAL)
    return MlflowClient


def tracking_uri(explicit: str | None, out: Path) -> tuple[str, bool]:
    """(the store's URI, whether it is the embedded one in `out`)."""
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, False
    return files.sqlite_url(out / STORE_FILE), True


def store_named(uri: str, explicit: str | None, local: bool) -> str:
    """Where the store's URI came from, as an error names it: the flag, the variable, or the
    run folder's own store (the user never typed its URI)."""
    if local:
        return f"the output folder's MLflow store {files.sqlite_path(uri)}"
    return f"{'--mlflow-uri' if explicit else 'MLFLOW_TRACKING_URI'} {shown_url(uri)}"


def check_answers(uri: str, timeout: float = ANSWER_SECONDS, *, named: str = "") -> None:
    """An http(s) tracking URI must answer its /health within `timeout` seconds; one line
    (naming the URI as `named`) if not. (MLflow's own client retries for minutes.) An SQLite
    file must be MLflow's or new: MLflow adds its tables to any database it is pointed at."""
    if uri.startswith("sqlite:///"):
        _check_not_another_database(files.sqlite_path(uri), named or uri)
    bare = re.fullmatch(r"([^/@\s]+@)?(\[[0-9A-Fa-f:.]+\]|[\w.-]{2,}):(\d{1,5})(/\S*)?", uri)
    if bare:  # host:port (a drive letter, C:1, is one character: not a host)
        scheme = "https" if bare.group(3) == "443" else "http"
        raise MnistlabError(f"{named or '--mlflow-uri ' + shown_url(uri)}: a server's address "
                            f"without {scheme}://, which MLflow would take for a folder; give "
                            f"{scheme}://{shown_url(uri)}")
    if not uri.startswith(("http://", "https://")):
        return
    named = named or f"--mlflow-uri {shown_url(uri)}"
    context = None
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        import ssl  # the user's own setting for a self-signed server, as MLflow reads it

        context = ssl._create_unverified_context()
    try:  # an address that is no URL (http://[::1, a port "abc") is one line too
        with urllib.request.urlopen(_health_request(uri), timeout=timeout,
                                    context=context) as reply:
            reply.read(64)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # it answered, behind a login: MLflow's client logs in
            return
        reason: Any = f"HTTP {exc.code}"
    except (ValueError, http.client.InvalidURL) as exc:
        raise MnistlabError(f"{named}: not a valid address ({exc}); give one such as "
                            "http://127.0.0.1:5000") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    else:
        return
    raise MnistlabError(
        f"{named}: no MLflow server answers there ({reason}); start it (mlflow server), fix "
        "the address, or leave out --mlflow-uri and MLFLOW_TRACKING_URI to log into the output "
        "folder")


def _health_request(uri: str) -> urllib.request.Request:
    parts = urlsplit(uri.rstrip("/") + "/health")
    request = urllib.request.Request(urlunsplit(parts._replace(  # urllib takes no user:pass@
        netloc=parts.netloc.rpartition("@")[2])))
    if parts.username is not None:
        import base64

        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(login).decode())
    _ = parts.port  # raises ValueError for a port that is not a number
    return request


def _quiet_http_client() -> None:
    """Fail fast when a server goes away mid-run (one retry, a 10 s timeout) instead of
    retrying for minutes, and keep MLflow's 'View run at' lines off stdout. A user's own
    settings of these variables are kept."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _check_not_another_database(path: Path, named: str) -> None:
    """Refuse, before MLflow writes into it, an SQLite file that holds tables but not MLflow's
    (a study's study.db, a search's tune.db): MLflow would add its own tables and then fail."""
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return  # new: MLflow makes it
    try:
        with files.read_only_sqlite(path) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return  # not SQLite at all: MLflow's own opening says so
    if tables and "experiments" not in tables:
        shown = first_few(sorted(tables), 4)
        raise MnistlabError(f"{named}: {path} is another tool's database (tables {shown}), not "
                            "an MLflow store, and was left as it is; give an MLflow store "
                            "or a new file (sqlite:///PATH/mlflow.db)")


def relocate(out: Path) -> Path | None:
    """The folder an embedded store in `out` was made in, if another (the folder was moved or
    copied), after pointing the store at `out`. MLflow records absolute paths, and no call of
    its API changes them: where each experiment's and run's files go (a copied study would
    write into the original, a moved one recreate the old folder) and the folder tag runs are
    found again by (every run would be logged a second time). Those columns are rewritten in
    the store's SQLite file, in one transaction; a file that is not such a store is left to
    MLflow's own opening to refuse."""
    import sqlite3

    path = out / STORE_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return None
    here, folder = (out / ARTIFACTS).resolve().as_uri(), str(out.resolve())
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            old = [row[0] for row in db.execute(
                "SELECT DISTINCT artifact_location FROM experiments WHERE artifact_location "
                "LIKE ? AND artifact_location != ?", (f"file://%/{ARTIFACTS}", here))]
            for uri in old:
                _replace_prefix(db, tables, uri, here, str(_uri_folder(uri)), folder)
    except sqlite3.Error:
        return None
    return _uri_folder(old[-1]) if old else None


def _forget_artifact_places() -> None:
    """MLflow keeps where each run's files go, by run id, for the life of the process: a
    folder copied and resumed in the process that wrote the original would write there."""
    from mlflow.tracking._tracking_service import utils

    with contextlib.suppress(AttributeError):  # a private cache: gone in a later MLflow, fine
        utils._artifact_repos_cache.clear()


def _uri_folder(uri: str) -> Path:
    """The folder holding the artifacts folder at file: `uri`."""
    return Path(unquote(urlsplit(uri).path)).parent


def _replace_prefix(db: Any, tables: set[str], uri: str, here: str, was: str, folder: str
                    ) -> None:
    """`uri` -> `here` where files go, `was` -> `folder` in the runs' folder tags."""
    moves = [("experiments", "artifact_location", uri, here),
             ("runs", "artifact_uri", uri, here),
             ("logged_models", "artifact_location", uri, here)]
    for table, column, old, new in moves:
        if table in tables:
            db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                       f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                       (new, len(old) + 1, old, len(old) + 1, old + "/"))
    db.execute("UPDATE tags SET value = ? || substr(value, ?) WHERE key = ? AND "
               "(value = ? OR substr(value, 1, ?) = ?)",
               (folder, len(was) + 1, FOLDER_TAG, was, len(was) + 1, was + os.sep))


def params_of(settings: dict[str, Any]) -> dict[str, str]:
    return {k: (",".join(map(str, v)) if isinstance(v, (list, tuple)) else
                "" if v is None else str(v)) for k, v in settings.items()}


def _a_file(path: Path, uri: str) -> bool:
    """An SQLite URL that names a file on disk (not `:memory:` or a memory URI)."""
    return path.name not in ("", ":memory:") and "mode=memory" not in uri


class Store:
    """One tracking store as mnistlab writes to it. Opening checks the store answers (one
    line if not); after that, the first failure warns once through `warn` and every later
    call does nothing, so training never stops for the tracking server."""

    def __init__(self, uri: str | None, out: Path, *, warn: Warn | None = None) -> None:
        client = require_mlflow()
        self.uri, self.local = tracking_uri(uri, out)
        self.named = store_named(self.uri, uri, self.local)
        self.out = out
        check_answers(self.uri, named=self.named)
        _quiet_http_client()
        self.warn = warn or (lambda line: print(line, flush=True))
        self.lost = False
        self._client_class, self._client = client, None
        self.moved_from = relocate(out) if self.local else None
        if self.moved_from is not None:
            _forget_artifact_places()
            self.warn(f"note: the MLflow store in {out} was made in {self.moved_from} (the "
                      "folder was moved or copied); its runs and files now point here")
        # said before training; the embedded store is made at first use, after its folder
        # was checked by whoever owns it, but one already there must open now too (another
        # MLflow version's schema, say), not after the first run of a study has trained
        if not self.local or (out / STORE_FILE).exists():
            self.client  # noqa: B018

    @property
    def client(self) -> Any:
        if self._client is None:
            path = files.sqlite_path(self.uri)
            if path is not None and _a_file(path, self.uri) and not path.exists():
                self._make_whole(path)
            self._client = self._opened(self.uri)
        return self._client

    def _opened(self, uri: str) -> Any:
        """A client of `uri`, the store made or brought up to date by MLflow as it opens."""
        # MLflow makes the SQLite file's folder from the URL as written, escapes and all:
        # a folder named "x?y" got an empty "x%3Fy" beside it (files.sqlite_url)
        written = Path(uri.removeprefix("sqlite:///")).parent
        stray = written if self.local and not written.exists() else None
        try:
            client = self._client_class(tracking_uri=uri)
            client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors share no useful base
            raise MnistlabError(f"{self.named}: {_cannot_open(exc, self.local)}") from None
        finally:
            if stray is not None:
                with contextlib.suppress(OSError):  # not made, or not empty: left
                    stray.rmdir()
        self._check_writes(uri)
        return client

    def _check_writes(self, uri: str) -> None:
        """An SQLite store that opens but cannot be written (a read-only file or folder):
        one line before training, where the first write failed in the run's first moment,
        and the whole run trained with logging off after MLflow's traceback."""
        path = files.sqlite_path(uri)
        if path is None or not path.is_file():
            return
        import sqlite3

        try:  # a table made and rolled back: a write needs the journal beside the file too
            with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TABLE mnistlab_write_probe (x)")
                db.rollback()
        except sqlite3.Error as exc:
            if "locked" in str(exc):  # busy with another process's writes: it can be written
                return
            raise MnistlabError(f"{self.named}: cannot write to it ({exc}): make {path} and its "
                                "folder writable, or give another --mlflow-uri") from None

    def _make_whole(self, path: Path) -> None:
        """A new SQLite store, made under a temporary name and linked into place: MLflow makes
        it in seconds of schema migrations, and a Ctrl-C among them left a half-made mlflow.db
        that every later run refused ("table jobs already exists"). So is a shared
        `--mlflow-uri sqlite:///...` file: two runs started together on a new one migrated it
        at once, and left it refused for good ("table _alembic_tmp_metrics already exists")."""
        # a name of its own each time: MLflow keeps an engine for every URL it opened
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{files.TEMP_SUFFIX}")
        try:
            self._opened(files.sqlite_url(tmp))
            with contextlib.suppress(FileExistsError):  # another process made one first
                os.link(tmp, path)  # (a tune worker beside this one): its
        finally:  # runs are kept, not replaced by this empty store as os.replace did
            for leftover in ("", "-journal", "-wal", "-shm"):
                tmp.with_name(tmp.name + leftover).unlink(missing_ok=True)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """client.method(*args, **kwargs); None once the store stopped answering."""
        if self.lost:
            return None
        client = self.client  # a store that cannot be opened is one line, not a warning
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure of the store: warn once, go on
            self.lost = True
            self.warn(f"warning: MLflow at {shown_url(self.uri)} failed ({_first_line(exc)}); "
                      "logging to it stops here, training goes on and the output folder keeps "
                      "everything")
            return None

    # --- experiments and runs ------------------------------------------------------------------
    def experiment(self, name: str) -> str | None:
        found = self.call("get_experiment_by_name", name)
        if found is not None:
            return found.experiment_id
        location = (self.out / ARTIFACTS).resolve().as_uri() if self.local else None
        return self.call("create_experiment", name, artifact_location=location)

    def find(self, experiment: str | None, tag: str, value: str,
             parent: str | None = None) -> list[Any]:
        """Runs of `experiment` whose `tag` is `value` (under `parent`), newest first."""
        if experiment is None:
            return []
        literal = _quoted(value)
        # both quotes in it (a folder q'u"x): MLflow's filters cannot say it; its longest
        # piece without either is, and the runs are matched whole here (it found none, and
        # each rerun logged the run again: hunt)
        piece = max(re.split("['\"]", value), key=len)
        text = (f"tags.`{tag}` = {literal}" if literal is not None else
                f"tags.`{tag}` LIKE '%{piece}%'" if piece else "")
        if parent is not None:
            text += f"{' and ' if text else ''}tags.`{PARENT_TAG}` = '{parent}'"
        found = self.call("search_runs", [experiment], filter_string=text,
                          order_by=["attributes.start_time DESC"], max_results=1000)
        return [run for run in found or [] if run.data.tags.get(tag) == value]

    def start(self, experiment: str | None, name: str, tags: dict[str, str],
              parent: str | None = None) -> str | None:
        if experiment is None:
            return None
        tags = {**tags, **({PARENT_TAG: parent} if parent else {})}
        run = self.call("create_run", experiment, run_name=name, tags=tags)
        return run.info.run_id if run is not None else None

    def end(self, run_id: str | None, status: str = "FINISHED") -> None:
        if run_id is not None:
            self.call("set_terminated", run_id, status)

    # --- what a run holds ------------------------------------------------------------------------
    def log(self, run_id: str | None, *, params: dict[str, Any] | None = None,
            metrics: list[tuple[str, float, int]] = (), tags: dict[str, str] | None = None
            ) -> None:
        """Params, (name, value, step) metrics and tags in batches of MLflow's limits."""
        if run_id is None:
            return
        from mlflow.entities import Metric, Param, RunTag

        stamp = _now_ms()
        items = ([Param(k, v) for k, v in params_of(params or {}).items()],
                 [Metric(k, float(v), stamp, s) for k, v, s in metrics if math.isfinite(v)],
                 [RunTag(k, str(v)) for k, v in (tags or {}).items()])
        for kind, batch, size in (("params", items[0], 100), ("metrics", items[1], 1000),
                                  ("tags", items[2], 100)):
            for first in range(0, len(batch), size):
                self.call("log_batch", run_id, **{kind: batch[first:first + size]})

    def files(self, run_id: str | None, folder: Path, names: tuple[str, ...],
              under: str | None = None) -> None:
        for name in names:
            path = folder / name
            if run_id is None or not path.exists():
                continue
            if path.is_dir():
                self.call("log_artifacts", run_id, str(path), name)
            else:
                self.call("log_artifact", run_id, str(path), under)


def _cannot_open(exc: BaseException, local: bool = False) -> str:
    """Why a store did not open, and what to do. MLflow 3 refuses a folder store (file:,
    ./mlruns: the default of MLflow 2) unless MLFLOW_ALLOW_FILE_STORE is set, in a paragraph
    whose first 300 characters never reach the fix."""
    if "MLFLOW_ALLOW_FILE_STORE" in str(exc):
        return ("a folder store (file:, ./mlruns), which this MLflow no longer opens unless "
                "asked; give a database store instead (sqlite:///PATH/mlflow.db; `mlflow "
                "migrate-filestore` moves a folder's runs into one), or set "
                "MLFLOW_ALLOW_FILE_STORE=true to keep logging into the folder")
    if local:  # made by mnistlab in the output folder: damaged, or another MLflow's schema
        return (f"cannot open it ({_first_line(exc)}); move mlflow.db out of the folder (or "
                "delete it) to start a new store there, or give --mlflow-uri")
    return f"cannot open it as an MLflow store ({_first_line(exc)})"


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip()
    line = shown_url(text.splitlines()[0] if text else type(exc).__name__)  # MLflow's text
    if len(line) > limit:  # names the URL, password and all; cut at a word, not inside one
        line = line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return line


def _quoted(value: str) -> str | None:
    """`value` as a literal of MLflow's search filters, which take no escapes: in single
    quotes, else double quotes (an O'Brien in the path), else None."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


# --- a run's contents ------------------------------------------------------------------------
def epoch_metrics(record: EpochRecord) -> list[tuple[str, float, int]]:
    return [(name, getattr(record, name), record.epoch) for name in EPOCH_METRICS]


def run_tags(config: TrainConfig, folder: Path | None, version: str) -> dict[str, str]:
    tags = {"mnistlab.version": version, "dataset": config.dataset, "seed": str(config.seed),
            "model": config.model}
    if folder is not None:
        tags[FOLDER_TAG] = str(folder.resolve())
    return tags


def finding_tags(summary: RunSummary, lang: str) -> dict[str, str]:
    """The doctor's findings: their codes, each one's title, and a note (the run's
    description in the MLflow UI) with evidence and fix."""
    found = summary.diagnoses
    tags = {"mnistlab.status": summary.status,
            "mnistlab.findings": ",".join(f.code for f in found) or "none"}
    lines = [f"**{t(lang, 'tracking.note.findings')}**", ""]
    for finding in found:
        text = finding.text(lang)
        severity = _severity(finding, lang)
        tags.update(finding_tag(finding, lang))
        lines.append(f"- **{text['title']}** ({severity}): {text['evidence']}. "
                     f"{t(lang, 'cli.fix')} {after_colon(text['fix'], lang)}")
    if not found:
        lines.append(t(lang, "tracking.note.none"))
    tags["mlflow.note.content"] = "\n".join(lines)
    return tags


def _severity(finding: Finding, lang: str) -> str:
    return t(lang, f"severity.{finding.severity}").lower()  # problem; problema, advertencia


def finding_tag(finding: Finding, lang: str) -> dict[str, str]:
    """The tag naming a finding, live during training and at the end alike."""
    return {f"mnistlab.finding.{finding.code}":
            f"{_severity(finding, lang)}: {finding.text(lang)['title']}"}


def _drop_stale_findings(store: Store, run_id: str | None, tags: dict[str, str]) -> None:
    """Delete the `mnistlab.finding.*` tags of `run_id` that `tags` (the end's) lacks."""
    if run_id is None:
        return
    run = store.call("get_run", run_id)
    held = run.data.tags if run is not None else {}
    for key in held:
        if key.startswith("mnistlab.finding.") and key not in tags:
            store.call("delete_tag", run_id, key)


def final_metrics(summary: RunSummary) -> list[tuple[str, float, int]]:
    values = [(f"final/{name}", getattr(summary, name), summary.epochs)
              for name in FINAL_METRICS]
    values.append(("parameters", float(summary.parameters), summary.epochs))
    values += [(name, v, summary.epochs) for name, v in summary.member_figures().items()]
    return [(k, float(v), s) for k, v, s in values if v is not None]


def finish_run(store: Store, run_id: str | None, summary: RunSummary, folder: Path | None,
               lang: str) -> None:
    """A run's end: final numbers, the doctor's findings, the folder's files; ended with
    MLflow's status for mnistlab's (interrupted: KILLED, diverged: FAILED). An interrupted
    run logs no final numbers: its resume goes on in the same MLflow run and logs them once
    (each attempt logged its own, and `final/*` held several values). A finding said during
    training that the end's diagnosis no longer holds loses its tag."""
    final = [] if summary.status == "interrupted" else final_metrics(summary)
    tags = finding_tags(summary, lang)
    _drop_stale_findings(store, run_id, tags)
    # the code that trained it, as summary.json says: a resume by other code is named too
    version = {"mnistlab.version": summary.code_version} if summary.code_version else {}
    store.log(run_id, metrics=final, tags={**tags, **version})
    if folder is not None:
        store.files(run_id, folder, RUN_FILES)
    status = {"interrupted": "KILLED", "diverged": "FAILED"}.get(summary.status, "FINISHED")
    store.end(run_id, status)


# finish_run's last step, logged whole: an interrupted run ends KILLED, and is completed once
# its folder has finished (resumed without --log mlflow, it stayed KILLED at its cut for good)
WHOLE = ("FINISHED", "FAILED")


def log_missing_epochs(store: Store, run_id: str | None, history: list[EpochRecord]) -> None:
    """The epochs of `history` after the last one the run holds (a server that went away)."""
    if run_id is None:
        return
    logged = store.call("get_metric_history", run_id, "lr") or []  # finite in every epoch
    last = max((m.step for m in logged), default=0)
    store.log(run_id, metrics=[m for record in history if record.epoch > last
                               for m in epoch_metrics(record)])


def not_logged(store: Store, run: Any, params: dict[str, Any],
               metrics: list[tuple[str, float, int]]
               ) -> tuple[dict[str, Any], list[tuple[str, float, int]]]:
    """What of `params` and (name, value, step) `metrics` a run cut short does not hold yet:
    logging a metric again would show its steps twice."""
    held = {name: {m.step for m in store.call("get_metric_history", run.info.run_id, name) or []}
            for name in {name for name, _, _ in metrics} & set(run.data.metrics)}
    return ({k: v for k, v in params.items() if k not in run.data.params},
            [m for m in metrics if m[2] not in held.get(m[0], set())])


def complete_run(store: Store, run: Any, folder: Path, lang: str) -> None:
    """A run logged from `folder` that never ended (the server went away, or a Ctrl-C came
    while it was logged), or ended interrupted where its folder has finished since (resumed
    without --log mlflow): its missing epochs, final numbers and files, then its end."""
    if run.info.status in WHOLE:
        return
    summary = runs.load_summary(folder)
    if run.info.status == "KILLED" and summary.status == "interrupted":
        return  # interrupted there as here: nothing more to log
    log_missing_epochs(store, run.info.run_id, runs.load_history(folder))
    finish_run(store, run.info.run_id, summary, folder, lang)


def same_settings(run: Any, config: TrainConfig) -> bool:
    """Whether `run` logged `config`, as `train` tells runs apart (runs.same_run): a run folder
    replaced with --overwrite keeps its folder tag on the old settings' run, which is not this
    one. Settings an older version did not log are not a difference, nor is an augmentation
    spelled in another order, nor where the run ran; nor a data folder's path (moved data is
    resumed with --dataset NEWDIR: train checks the data itself)."""
    from ..data.sources import KNOWN_DATASETS

    ours = params_of(config.to_dict())
    logged = run.data.params
    differ = {k: logged[k] for k in ours.keys() & logged.keys()
              if logged[k] != ours[k] and k not in PLACEMENT}
    if "dataset" in differ and not {differ["dataset"], ours["dataset"]} & set(KNOWN_DATASETS):
        del differ["dataset"]
    if not differ:
        return True
    try:
        theirs = TrainConfig.from_dict({**config.to_dict(), **differ}, typed=False)
    except MnistlabError:
        return False
    return runs.same_run(theirs, config)


def _empty_start(run: Any) -> bool:
    """Whether `run` (of this configuration's settings) is its start, stopped before its first
    epoch ended (a Ctrl-C in epoch 1): not ended whole, no epoch logged."""
    return run.info.status != "FINISHED" and "lr" not in run.data.metrics  # lr: every epoch


def log_folder(store: Store, experiment: str | None, folder: Path, name: str, *,
               parent: str | None = None, tags: dict[str, str] | None = None,
               lang: str = "en") -> str | None:
    """A finished run folder as one MLflow run (under `parent`, if given)."""
    config = load_config(folder / "config.toml")
    summary = runs.load_summary(folder)
    run_id = store.start(experiment, name, {**run_tags(config, folder, summary.code_version),
                                            **(tags or {})}, parent)
    metrics = [m for record in runs.load_history(folder) for m in epoch_metrics(record)]
    store.log(run_id, params=config.to_dict(), metrics=metrics)
    finish_run(store, run_id, summary, folder, lang)
    return run_id


class MLflowLogger(Hook):
    """Live MLflow logging of a run of one model into the store at `uri` (default:
    MLFLOW_TRACKING_URI, else `out`/mlflow.db): settings at the start, metrics at each epoch's
    end, findings as the doctor says them, then the final numbers and the run folder's files.
    A resumed run continues its MLflow run. `experiment` defaults to the folder's name.

        train(config, out="runs/a", hooks=[MLflowLogger("runs/a")])
    """

    def __init__(self, out: str | Path, *, uri: str | None = None, experiment: str | None = None,
                 lang: str = "en", store: Store | None = None, warn: Warn | None = None) -> None:
        self.out = Path(out)
        self.store = store or Store(uri, self.out, warn=warn)
        self.experiment = experiment or self.out.resolve().name
        self.lang = lang
        self.run_id: str | None = None

    def on_run_start(self, run: Run) -> None:
        experiment = self.store.experiment(self.experiment)
        folder = str(self.out.resolve())
        done = run.histories[0]
        earlier = [r for r in self.store.find(experiment, FOLDER_TAG, folder)
                   if same_settings(r, run.config)]
        if not done:  # a resume of a run stopped in its first epoch, or a new run: its start
            earlier = [r for r in earlier if _empty_start(r)]  # tells them apart
        if earlier:  # a resumed run goes on in the MLflow run it started, with the epochs
            self.run_id = earlier[0].info.run_id  # it missed (the server was away) logged now
            self.store.call("update_run", self.run_id, status="RUNNING")
            log_missing_epochs(self.store, self.run_id, done)
            return
        self.run_id = self.store.start(experiment, self.out.resolve().name,
                                       run_tags(run.config, self.out, code_version()))
        self.store.log(self.run_id, params=run.config.to_dict(),
                       metrics=[m for record in done for m in epoch_metrics(record)])

    def on_epoch_end(self, run: Run) -> None:
        if run.histories[0] and run.histories[0][-1].epoch == run.epoch:
            self.store.log(self.run_id, metrics=epoch_metrics(run.histories[0][-1]))

    def on_finding(self, run: Run, member: int, finding: Finding) -> None:
        self.store.log(self.run_id, tags=finding_tag(finding, self.lang))

    def on_member_finished(self, run: Run, member: int, result: RunResult) -> None:
        if member == 0:
            finish_run(self.store, self.run_id, result.summary, result.out, self.lang)
