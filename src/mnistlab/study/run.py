"""Execute a study: plan, train what is missing, record, choose the final model, report.

Re-running the same command on the same folder skips finished runs (they are in the store)
and continues an unfinished run from its last epoch checkpoint. How runs are executed is a
backend's business (backends.py): the local one trains cohorts and single runs in worker
processes, one per CPU core.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import doctor, files, interrupt, runs
from ..config import PLACEMENT, TRACKING_ENTRIES, TrainConfig, load_config
from ..errors import MnistlabError, first_few
from ..messages import t
from ..records import EpochRecord, RunSummary
from ..runs import results_rows
from .backends import LocalBackend, remove_dead_cohorts
from .placement import key_placement
from .plan import (
    Cell,
    Placement,
    Plan,
    PlannedRun,
    final_config,
    plan_experiments,
    plan_final,
    run_key,
)
from .spec import MAX_SEEDS, Experiment, StudySpec, kept_experiments, variant_name
from .stats import summarize
from .store import Store, StoredRun

RESULT_FIELDS = ("experiment", "factor", "value", "seed", "epochs", "train_acc_eval",
                 "train_acc_running", "val_acc", "val_loss", "gap", "test_acc", "reported_metric",
                 "seconds", "status", "run", "base")


# --- results ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One cell of the study with the numbers of the run it points at."""

    experiment: str
    factor: str
    value: str
    seed: int
    key: str
    is_base: bool
    epochs: int
    train_accuracy_eval: float
    train_accuracy_running: float
    val_accuracy: float
    val_loss: float
    test_accuracy: float | None
    reported_metric: float | None
    seconds: float
    status: str
    history: list[EpochRecord] = field(default_factory=list, repr=False)
    # the run folder its figures were read from, where that is not its own: a shorter run
    # read off a longer one's history (its epochs say where)
    read_from: str = ""

    @property
    def gap(self) -> float:
        return self.train_accuracy_eval - self.val_accuracy


def row_from(cell: Cell, summary: RunSummary, history: list[EpochRecord],
             snapshot_epoch: int = 0) -> Row:
    if snapshot_epoch:  # a prefix of a longer run: read epoch E off its history
        history = history[:snapshot_epoch]
        rec = history[-1]
        return Row(cell.experiment, cell.factor, cell.label, cell.seed, cell.key, cell.is_base,
                   len(history), rec.train_accuracy_eval, rec.train_accuracy_running,
                   rec.val_accuracy, rec.val_loss, None, _metric(rec.val_metric),
                   sum(r.seconds for r in history), "completed", history)
    return Row(cell.experiment, cell.factor, cell.label, cell.seed, cell.key, cell.is_base,
               summary.epochs, _num(summary.train_accuracy_eval),
               _num(summary.train_accuracy_running), _num(summary.val_accuracy),
               _num(summary.val_loss), summary.test_accuracy, summary.val_metric,
               summary.seconds, summary.status, history)


def _metric(value: float) -> float | None:
    return None if math.isnan(value) else value  # NaN: a history without that column


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass
class StudyResult:
    spec: StudySpec
    out: Path
    plan: Plan
    rows: list[Row]  # one per cell (experiment x variant x seed)
    final_rows: list[Row]
    final_config: TrainConfig | None
    summaries: dict[str, RunSummary]  # run key -> summary
    # seeds of every configuration the folder holds finished, where that is more than
    # spec.seeds (a study run again with fewer --seeds than before): 0 otherwise
    seeds_stored: int = 0

    def __repr__(self) -> str:  # a notebook cell ending in run_study() printed 59,000
        # characters: the spec, the plan and every summary (hunt)
        tests = [r.test_accuracy for r in self.final_rows if r.test_accuracy is not None]
        final = f", final_test_accuracy={sum(tests) / len(tests):.4f}" if tests else ""
        return (f"StudyResult(name={self.spec.name!r}, out={str(self.out)!r}, "
                f"runs={len(self.summaries)}, rows={len(self.rows)}{final})")

    def trained_runs(self) -> list[tuple[str, RunLabel, Path]]:
        """(key, label, folder) of every run of this study's experiments and final model,
        trained in this or an earlier go; not the runs an earlier go left that this one does
        not report (more seeds, a final model since chosen otherwise): they were logged
        again as "final, seed 0"."""
        finals = {r.key for r in self.final_rows}
        return [(key, run_label(self.spec, self.plan, key, self._seed(key)),
                 self.out / "runs" / key) for key in self.summaries
                if key in self.plan.runs or key in finals]

    def _seed(self, key: str) -> int:
        run = self.plan.runs.get(key)
        if run is not None:
            return run.config.replicate_seed(self.spec.base.seed)
        return next((r.seed for r in self.final_rows if r.key == key), 0)

    def distinct_rows(self) -> list[Row]:
        """One row per distinct run: the base, shared by several experiments, appears once.
        The final model's rows are always there, also where its settings are a variant's or
        the base's (the same run: results.csv lost its final rows)."""
        seen: dict[str, Row] = {}
        for row in self.rows:
            if row.key in seen:
                first = seen[row.key]
                if first.is_base or row.is_base:
                    first.experiment, first.factor, first.value = "base", "", "base"
                    first.is_base = True
                continue
            seen[row.key] = Row(**{**row.__dict__})
        return [*seen.values(), *(Row(**{**row.__dict__}) for row in self.final_rows)]


@dataclass(frozen=True)
class RunLabel:
    """A distinct run as a reader names it: 'base', 'lr=0.01' or 'final', and its seed; in
    English (`str`: a TensorBoard folder's name, the same in any language) or in `lang`
    (`text`: an MLflow run's name)."""
    factor: str  # "" for the base and the final model
    value: str  # "base", "final", or the variant's label
    seed: int
    experiment: Experiment | None = field(default=None, compare=False)  # its words in `lang`

    def text(self, lang: str = "en") -> str:
        if not self.factor:
            name = self.value
        elif self.experiment is not None and lang != "en":  # as the report names it (0,01)
            name = self.experiment.run_name(self.value, lang)
        else:  # English: a TensorBoard folder's name, as it always was
            name = variant_name(self.factor, self.value, lang)
        return t(lang, "tracking.run", run=name, seed=self.seed)

    def __str__(self) -> str:
        return self.text()


def run_label(spec: StudySpec, plan: Plan, key: str, seed: int) -> RunLabel:
    cells = ([c for c in plan.cells if c.key == key]
             or [c for c in plan.cells if plan.runs[c.key].snapshot_of == key])
    if not cells:
        return RunLabel("", "final", seed)
    if any(c.is_base for c in cells):
        return RunLabel("", "base", seed)
    experiment = next((e for e in spec.experiments if e.name == cells[0].experiment), None)
    return RunLabel(cells[0].factor, cells[0].label, seed, experiment)


def run_names(study: Path, lang: str) -> dict[str, str]:
    """{run folder name: "lr=0.01, seed 1"}, each run of the study folder `study` named as its
    report names it, in `lang`, from results.csv and the experiments study.json keeps (runs
    results.csv does not list yet: by their settings): `mnistlab doctor STUDY_DIR` named them
    by their keys alone. A folder several rows point at (shorter runs read off a longer one's
    history) is named by its longest."""
    def rank(row: dict[str, str]) -> tuple[int, bool]:  # the longest; the final before a trial
        return _whole(row.get("epochs")), row.get("experiment") == "final"

    chosen: dict[str, dict[str, str]] = {}
    for row in results_rows(study):
        run = row.get("run") or ""
        if run and (run not in chosen or rank(row) > rank(chosen[run])):
            chosen[run] = row
    kept = _kept_identity(study) or {}
    settings = kept.get("settings")
    experiments = kept_experiments(settings, kept.get("labels"))
    base = settings[1] if isinstance(settings, list) and len(settings) > 1 else None
    names = {"base": t(lang, "concl.base"), "final": t(lang, "doctor.final")}
    out = {}
    for run, row in chosen.items():
        experiment, value = row.get("experiment") or "", row.get("value") or ""
        exp = experiments.get(experiment)
        # a row only one experiment holds; an experiment scored on test (trials) trains runs
        # of its own, never the base's: its variant is named by its label, as the report does
        if exp is not None and not exp.test and exp.is_base(value, base):
            experiment = "base"
        name = names.get(experiment) or (exp.run_name(value, lang) if exp is not None
                                         else variant_name(row.get("factor") or "", value, lang))
        out[run] = t(lang, "doctor.run", run=name, seed=row.get("seed", "?"))
    return {**_unlisted_names(study, experiments, base, lang, names, listed=set(out)), **out}


def _unlisted_names(study: Path, experiments: dict[str, Experiment], base: Any, lang: str,
                    names: dict[str, str], listed: set[str]) -> dict[str, str]:
    """The run folders as their settings name them (config.toml against the base's and each
    variant's, as study.json keeps them): a study stopped before it wrote results.csv has
    them only, and `doctor` listed its runs, the stopped ones above all, by their keys."""
    try:
        base_config = TrainConfig.from_dict(base) if isinstance(base, dict) else None
    except MnistlabError:
        base_config = None
    if base_config is None:
        return {}
    candidates = [(None, None, {})] + [(exp, v.label, v.changes) for exp in experiments.values()
                                       for v in exp.variants]
    out = {}
    for path in sorted((study / "runs").glob("*/config.toml")):
        key = path.parent.name
        if key in listed:  # results.csv names it
            continue
        try:
            config = load_config(path)
        except MnistlabError:
            continue
        # whether it scores the test set (a trial's or the final model's), where its key says
        test = {run_key(config, True): True, run_key(config, False): False}.get(key)
        name = next((names["base"] if exp is None else exp.run_name(label, lang)
                     for exp, label, changes in candidates
                     if test is None or test == (exp is not None and exp.test)
                     if _same_settings(base_config, changes, config)),
                    names["final"] if test else None)
        if name is not None:
            seed = config.replicate_seed(base_config.seed)
            out[key] = t(lang, "doctor.run", run=name, seed=seed)
    return out


def _same_settings(base: TrainConfig, changes: dict[str, Any], config: TrainConfig) -> bool:
    """Whether `config` is the base with `changes`, whatever its seed (a replicate)."""
    try:
        twin = TrainConfig.from_dict({**base.to_dict(), **changes, "seed": config.seed})
    except MnistlabError:
        return False
    return runs.same_run(twin, config)


def _whole(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def results_csv(rows: Iterable[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESULT_FIELDS)
    for r in rows:
        writer.writerow([_fmt(v) for v in (
            r.experiment, r.factor, r.value, r.seed, r.epochs, r.train_accuracy_eval,
            r.train_accuracy_running, r.val_accuracy, r.val_loss, r.gap, r.test_accuracy,
            r.reported_metric, round(r.seconds, 2), r.status, r.read_from or r.key,
            "true" if r.is_base else "false")])  # also where one experiment holds the base
    return buffer.getvalue()


# --- the study -------------------------------------------------------------------------------
OnRun = Callable[[str, "RunLabel", Path], None]  # (run key, its label, its folder)


def check_devices(spec: StudySpec) -> None:
    """Every device the study's runs ask for is here: a variant's `device = "cuda"` on a
    machine without one failed after the other variants had trained, and the file mended
    was then refused as another study. For a study not begun (nothing written yet)."""
    asked = [("[base]", spec.base.device),
             *((f"experiment {e.name!r}, variant {v.label}", v.changes.get("device"))
               for e in spec.experiments for v in e.variants),
             ("[final] settings", spec.final.settings.get("device"))]
    for where, device in asked:
        _device_here(spec, where, device)


def check_can_begin(spec: StudySpec) -> None:
    """What a study not begun needs here: its devices and its datasets."""
    check_devices(spec)
    check_data(spec)


def check_data(spec: StudySpec) -> None:
    """Every dataset the study's runs read is where they will look (not read: a study on
    MNIST missing from --data-dir wrote its folder, which the mended command was then refused
    as another study's). Only those runs that train: a base whose dataset every variant
    replaces is not asked for (review). For a study not begun, as check_devices."""
    from ..data.dataset import find_dataset

    with warnings.catch_warnings():  # said again where the runs read it
        warnings.simplefilter("ignore")
        for dataset, data_dir in sorted({(c.dataset, c.data_dir) for c in _reading(spec)},
                                        key=str):
            find_dataset(dataset, data_dir)


def _reading(spec: StudySpec) -> list[TrainConfig]:
    """The configs of the runs that read data: the experiments', and the final model's where
    it reads other data (or is all there is)."""
    configs = [run.config for run in plan_experiments(spec, share_prefixes=False).runs.values()]
    final = final_config(spec, {})  # [final]'s own settings; a best variant's are above
    if final is not None and (spec.final.choose == "explicit" or not configs or {
            "dataset", "data_dir"} & {k.replace("-", "_") for k in spec.final.settings}):
        configs.append(final)
    return configs


def check_run_devices(spec: StudySpec, plan: Plan, runs: Iterable[PlannedRun]) -> None:
    """The devices of the runs still to train, before any of them trains. Finished runs are
    not asked: a study finished on a GPU machine rebuilds its report on any other."""
    where = {c.key: "[base]" if c.is_base else f"experiment {c.experiment!r}, variant {c.label}"
             for c in plan.cells}
    for run in runs:
        _device_here(spec, where.get(run.key, "the final model"), run.config.device)


def _check_before_training(store: Store, out: Path, spec: StudySpec, plan: Plan,
                           runs: list[PlannedRun], backend: Any) -> None:
    """What must hold before a resumed study trains `runs` (or its final model, where its
    results were never written): the devices here; and, whatever is left to do, the data it
    read before (its report draws the final model's misclassified images from it)."""
    if isinstance(backend, LocalBackend):  # a cluster's workers may have what this lacks
        _check_devices_left(spec, plan, runs)
    _same_data_as_before(store, _reading(spec),
                         training=bool(runs) or not (out / "results.csv").is_file())


def _same_data_as_before(store: Store, configs: list[TrainConfig], *, training: bool) -> None:
    """Each dataset given by its folder holds what the study's first runs read
    (data.dataset.unchanged_data). Its files' digest is read here, nothing decoded: the runs
    may train in workers or on a cluster (review: read twice there)."""
    from ..data.dataset import unchanged_data

    recorded = store.data_digests()
    digests = unchanged_data([c.dataset for c in configs], recorded, "study",
                             training=training)
    if digests != recorded:
        store.set_data_digests(digests)


def _check_devices_left(spec: StudySpec, plan: Plan, runs: list[PlannedRun]) -> None:
    """Before a resumed study trains `runs`: their devices, and, while experiments are left
    with the final model chosen from the best variants, every device the final model may take
    (a variant's, where [final] sets none): said after those runs had trained, the study was
    stranded (the file mended is another study)."""
    check_run_devices(spec, plan, runs)
    if not any(r.key in plan.runs for r in runs) or spec.final.choose != "best":
        return
    if "device" in spec.final.settings:
        _device_here(spec, "[final] settings", spec.final.settings["device"])
        return
    try:
        check_devices(spec)
    except MnistlabError as exc:
        raise MnistlabError(f"{exc} (the final model, still to train, takes the best "
                            "variants' settings, this one's device if it wins)") from None


def _device_here(spec: StudySpec, where: str, device: Any) -> None:
    from ..device import resolve_device

    if isinstance(device, str):
        try:
            resolve_device(device)
        except MnistlabError as exc:
            raise MnistlabError(f"study {spec.name}: {where}: {exc}") from None


@interrupt.scoped
def train_study(spec: StudySpec, out: str | Path, *, backend: Any = None,
                progress: Any = None, on_run: OnRun | None = None,
                then: Callable[[StudyResult], None] | None = None,
                lang: str = "en") -> StudyResult:
    """Train every missing run of `spec` into `out` and write results.csv. The report is the
    report layer's (report.study.write_study_report; `mnistlab.run_study` does both, the
    report as `then`, called with the folder's lock still held: another study command on the
    folder in between wrote results.csv for 2 seeds under a report of 1). `on_run` is called
    here, in this process, after each run is recorded (tracking). The final model's figures
    (in its run folders) say their words in `lang`."""
    from ..progress import StudyProgress

    out = Path(out)
    backend = backend or LocalBackend()
    local = isinstance(backend, LocalBackend)  # a cluster's workers may have what this lacks
    if local and not (out / "study.db").exists():
        check_can_begin(spec)  # before the folder is written: a mended file is the same study
    check_study_folder(out, spec)  # before anything is written into it
    files.check_output_folder(out)
    progress = progress or StudyProgress(silent=True)
    with files.exclusive(out / "study.lock", "this study"), Store(out / "study.db") as store:
        keyed_at = _claim(store, out, spec)
        plan = plan_experiments(spec, keyed_at=keyed_at)
        files.remove_stale_temps(out)  # left by a study killed mid-write
        done = store.finished()
        # an explicit final model trains beside the experiments, unless a variant trains its
        # settings: then it waits for that run, which is then scored on the test set
        explicit = (plan_final(spec, final_config(spec, {}), keyed_at)
                    if spec.final.choose == "explicit" else [])
        mend_folders(out, plan.to_train + explicit, done)
        todo = [r for r in plan.to_train if r.key not in done]
        early_final = [r for r in explicit if r.key not in done and not _trained_twin(r, plan)]
        _check_before_training(store, out, spec, plan, todo + early_final, backend)
        # The study bar counts distinct runs, finished ones too (a resumed study starts part
        # way). The best variants' final runs are known only once the experiments are done:
        # until then the bar counts one per seed, and then the runs themselves.
        counted = {r.key for r in plan.to_train + explicit}
        progress.start(total=len(counted) + spec.seeds * (spec.final.choose == "best"),
                       done=len(counted & done.keys()))

        def on_done(run: PlannedRun, summary: RunSummary, history: list[EpochRecord]) -> None:
            store.record(run.key, run.config, run.test, summary, history)
            done[run.key] = StoredRun(summary, history, run.test)
            progress.run_finished(run, summary)
            if on_run is not None:
                seed = run.config.replicate_seed(spec.base.seed)  # as the tables show it
                on_run(run.key, run_label(spec, plan, run.key, seed), out / "runs" / run.key)

        try:
            backend.execute(todo + early_final, out, on_done, progress.reporter_for,
                            lang=lang)
            rows = _rows(plan, done)
            chosen = _choose_final(spec, rows)
            final_rows: list[Row] = []
            final_runs: list[PlannedRun] = []
            if chosen is not None:
                final_runs = plan_final(spec, chosen, keyed_at)
                missing = mend_folders(out, final_runs, done)  # once chosen: trained now
                counted |= {r.key for r in final_runs}
                progress.recount(total=len(counted), done=len(counted & done.keys()))
                if local:
                    check_run_devices(spec, plan, missing)
                missing = _score_trained(missing, plan, done, out, on_done, lang, backend)
                backend.execute(missing, out, on_done, progress.reporter_for, lang=lang)
                for r in final_runs:  # numbered as the experiments' replicates are
                    cell = Cell("final", "final", "final",
                                r.config.replicate_seed(spec.base.seed), r.key, False)
                    final_rows.append(row_from(cell, done[r.key].summary, done[r.key].history))
        finally:
            progress.stop()
        configs = {r.key: r.config for r in [*plan.to_train, *early_final, *final_runs]}
        result = StudyResult(spec, out, plan, rows, final_rows, chosen,
                             {k: _diagnosed(v, configs.get(k)) for k, v in done.items()},
                             _seeds_stored(spec, plan, done.keys(), keyed_at))
        # with the lock still held: another command on this folder clears stale temporaries
        _write_results(out, result, [c for k, c in configs.items() if k in done])
        if then is not None:
            then(result)
    return result


def _write_results(out: Path, result: StudyResult, finished: list[TrainConfig]) -> None:
    """results.csv, once every run is trained; the cohort checkpoints the runs `finished` left
    unable to resume go."""
    files.write_text(out / "results.csv", results_csv(result.distinct_rows()))
    remove_dead_cohorts(out, finished)


def _score_trained(missing: list[PlannedRun], plan: Plan, done: dict[str, StoredRun],
                   out: Path, on_done: Callable[..., None], lang: str,
                   backend: Any) -> list[PlannedRun]:
    """The final runs still to train, of those `missing`. One whose settings a variant's run
    trained already (a best variant that changes the base in one experiment only, or explicit
    settings that are a variant's) is that run scored on the test set here, not a second
    training of the same network: recorded through `on_done`. (Where its device is not here,
    a cluster's, it is trained there.) The data read for it is the local backend's, where it
    holds it (a study on 784 MB of images read them once more here, and kept both)."""
    from ..data.cache import DataCache
    from ..device import resolve_device
    from ..training.finish import score_on_test

    cache = getattr(backend, "cache", None) or DataCache()
    left = []
    for run in missing:
        source = _trained_twin(run, plan, done)
        dest = out / "runs" / run.key
        if source is None:
            left.append(run)
            continue
        kept = runs.finished_result(dest, run.config, needs_test=True)
        if kept is not None:  # trained (or scored) for it before: read once, here
            on_done(run, kept.summary, kept.history)
            continue
        try:
            resolve_device(run.config.device)
            runs.check_run_folder(dest, "")
            runs.check_named_run_folder(dest, run.config)
            with files.exclusive(dest / runs.LOCK_FILE, "a training run"):
                result = score_on_test(out / "runs" / source, dest, run.config,
                                       cache.splits(run.config), lang)
        except MnistlabError:  # a device not here, its model unreadable: trained
            left.append(run)  # (where its folder cannot hold the run, training says so)
            continue
        on_done(run, result.summary, result.history)
    return left


def mend_folders(out: Path, planned: list[PlannedRun],
                 done: dict[str, StoredRun]) -> list[PlannedRun]:
    """The runs `planned` recorded in the store (`done`) whose folders are gone or not
    whole (deleted by hand, a disk's damage): their text files written again from the store
    where the model is there, else taken out of `done` to train again; said in one warning.
    A study run again said nothing of them, and its report quietly left out the final
    model's grid of mistakes, read off its model.pt. Returns the runs of `planned` not in
    `done`: those to train."""
    mended = []
    for key, config, test in ((r.key, r.config, r.test) for r in planned):
        stored, folder = done.get(key), out / "runs" / key
        if stored is None or stored.summary.status == "interrupted":
            continue
        lacking = runs.not_whole(folder, load=test)
        if not lacking:
            continue
        if runs.rewrite_run_files(folder, config, stored.summary, stored.history, lacking):
            mended.append(f"runs/{key} ({', '.join(lacking)}: written again from study.db)")
            continue
        lost = "gone" if not folder.is_dir() else "its model.pt " + (
            "unreadable" if (folder / "model.pt").is_file() else "missing")
        del done[key]
        runs.discard_lost_run(folder)
        mended.append(f"runs/{key} ({lost}: trained again)")
    if mended:
        warnings.warn(f"{out}: {len(mended)} run folder{'s' * (len(mended) != 1)} of this study "
                      f"not whole, mended: {first_few(mended, 4, '; ')}"
                      + ("; a run trained again replaces its numbers in study.db"
                         * any(m.endswith("trained again)") for m in mended)), stacklevel=2)
    return [r for r in planned if r.key not in done]


def _trained_twin(run: PlannedRun, plan: Plan,
                  done: dict[str, StoredRun] | None = None) -> str | None:
    """The key of the experiments' run with `run`'s settings (not a test's, not one read off
    a longer run, on the same device: part of a run in a study), if any; with `done`, only a
    finished one that neither diverged nor was interrupted."""
    return next((key for key, other in plan.runs.items()
                 if not other.test and other.snapshot_of is None
                 and (done is None or (key in done and done[key].summary.status
                                       not in ("diverged", "interrupted")))
                 and other.config.device == run.config.device
                 and runs.same_run(other.config, run.config)), None)


def _diagnosed(stored: StoredRun, config: TrainConfig | None) -> RunSummary:
    """A run's summary with its stored findings merged with a fresh diagnosis, as `mnistlab
    doctor` tells them: a folder trained by an earlier version was told one fix in its report
    and another by the doctor (labels shuffled on purpose, then not yet named)."""
    summary = stored.summary
    if config is None or summary.status == "interrupted" or not stored.history:
        return summary
    return replace(summary, diagnoses=doctor.findings_now(summary, config, stored.history))


def _seeds_stored(spec: StudySpec, plan: Plan, done: Iterable[str],
                  keyed_at: Placement) -> int:
    """How many seeds of each of `spec`'s configurations the folder holds finished, where
    that is more than `spec.seeds`; else 0. A study run again with --seeds 1 reported one
    seed and advised `--seeds 3`, not saying those runs were there already."""
    done = set(done)
    seeds = spec.seeds
    while seeds < MAX_SEEDS and len(done) > len(plan.to_train):  # else nothing more is there
        wider = plan_experiments(replace(spec, seeds=seeds + 1), keyed_at=keyed_at)
        if any(r.key not in done for r in wider.to_train):
            break
        seeds += 1
    return seeds if seeds > spec.seeds else 0


# --- the study folder ------------------------------------------------------------------------
# What a study writes into its folder; anything else there means the folder is someone else's.
STUDY_ENTRIES = {"study.db", "study.db-wal", "study.db-shm", "study.db-journal", "study.lock",
                 "runs", "cohorts", "plots", "results.csv", "report.md", "report.html",
                 "study.json", *TRACKING_ENTRIES}
# study.db's record of which study the folder holds, kept beside it too: a folder whose
# study.db was deleted or moved aside (as a damaged one is) still refuses another study
IDENTITY_FILE = "study.json"


def identity_settings(spec: StudySpec) -> list[Any]:
    """What makes two study files the same study: its name and everything that decides which
    runs it trains, but not the number of seeds (more seeds extend a study), the words
    (titles, descriptions) or where data and device are (they do not change the numbers)."""
    base = {k: v for k, v in spec.base.identity_dict().items()
            if k not in PLACEMENT}
    experiments = [[e.name, e.factor, e.test, [[v.label, v.changes] for v in e.variants]]
                   for e in spec.experiments]
    return [spec.name, base, experiments, spec.final.choose, spec.final.settings]


def study_identity(spec: StudySpec) -> str:
    """identity_settings, hashed: what a study folder records to know its study."""
    data = identity_settings(spec)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def check_study_folder(out: Path, spec: StudySpec) -> None:
    """Refuse a folder that is not this study's: a file, another study's folder, or a folder
    holding anything a study does not write (a study only writes and deletes its own files)."""
    ours = _identity_record(spec)
    if (out / "study.db").is_file():
        with Store(out / "study.db") as store:
            stored = store.identity()
            if (stored is not None and stored != ours["identity"]
                    and not respelled_alike(store.identity_settings(), ours["settings"])):
                raise MnistlabError(_not_this_study(out, store.identity_settings(),
                                                    ours["settings"]))
        return
    files.check_owned_folder(out, STUDY_ENTRIES, "study")
    kept = _kept_identity(out)
    if (kept is not None and kept.get("identity") != ours["identity"]
            and not respelled_alike(kept.get("settings"), ours["settings"])):
        raise MnistlabError(_not_this_study(out, kept.get("settings"), ours["settings"]))


def respelled_alike(old: Any, new: list[Any]) -> bool:
    """A folder made before a variant's or the final model's settings were read as the
    settings they spell ("val-from" as val_from: hunt), whose identity kept them as written:
    the same study, spelt the other way."""
    def spelt(changes: dict[str, Any]) -> dict[str, Any]:
        return {key.replace("-", "_"): value for key, value in changes.items()}

    try:
        name, base, experiments, choose, final = old
        respelled = [name, base, [[exp, factor, test, [[label, spelt(changes)]
                                                      for label, changes in variants]]
                                  for exp, factor, test, variants in experiments],
                     choose, spelt(final)]
    except (TypeError, ValueError, AttributeError):
        return False
    return respelled != old and respelled == new


def _identity_record(spec: StudySpec) -> dict[str, Any]:
    """What study.db and study.json record of the study a folder holds, as JSON reads it
    back (tuples as lists); study.json also keeps how each variant's label reads in the other
    languages (`labels`: words, never part of the identity), for `doctor --lang` to name runs
    as the report does."""
    labels = {e.name: {v.label: v.translations for v in e.variants if v.translations}
              for e in spec.experiments}
    return {"identity": study_identity(spec),
            "settings": json.loads(json.dumps(identity_settings(spec))),
            "labels": {name: said for name, said in labels.items() if said}}


def _kept_identity(out: Path) -> dict[str, Any] | None:
    """The identity study.json keeps (None where there is none, or it cannot be read: then
    the folder is judged as before it was written)."""
    try:
        kept = json.loads((out / IDENTITY_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return kept if isinstance(kept, dict) else None


def _not_this_study(out: Path, old: list[Any] | None, new: list[Any]) -> str:
    """The one-line refusal of a study folder made from other settings, naming what changed
    where the folder recorded what it was made from."""
    one_study = "(a study folder only ever holds one study)"
    try:
        changed = settings_changed(old, new) if old is not None else None
    except Exception:  # noqa: BLE001 - a row this code did not write: only a message is lost
        changed = None
    if changed is None or old is None:
        return (f"--out {out}: holds another study (or this one made from other settings); "
                f"use another --out {one_study}")
    if old[0] != new[0]:
        quick = ("the full form of this study; --quick makes another"
                 if new[0] == f"{old[0]}-quick" else
                 "this study's --quick form; without --quick it is another"
                 if old[0] == f"{new[0]}-quick" else "")  # both named 'tiny' was a riddle
        held = f" ({old[0]!r}: {quick})" if quick else f" ({old[0]!r})"
        return f"--out {out}: holds another study{held}; use another --out {one_study}"
    shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3
                                      else "")
    return (f"--out {out}: holds this study made from other settings ({shown}); "
            f"{_data_gone(old[1], new[1])}put the settings back as they were to resume it, or "
            f"give the changed study another --out {one_study}")


def _data_gone(old_base: dict[str, Any], new_base: dict[str, Any]) -> str:
    """Where the base's dataset folder changed and the old one is gone (moved, the study file
    following it): why the study cannot follow it, before the refusal's advice."""
    from ..data.sources import KNOWN_DATASETS

    old = old_base.get("dataset")
    if (not isinstance(old, str) or old == new_base.get("dataset") or old in KNOWN_DATASETS
            or Path(old).exists()):
        return ""
    return (f"{old} is not there now: a study's runs are named after the dataset folder they "
            f"read, so put that folder back and ")


def settings_changed(old: list[Any], new: list[Any]) -> list[str]:
    """What differs between two identity_settings of the same study name, in words."""
    _, old_base, old_exps, old_choose, old_final = old
    _, new_base, new_exps, new_choose, new_final = new
    changed = _dict_changes("base", old_base, new_base)
    old_by, new_by = {e[0]: e for e in old_exps}, {e[0]: e for e in new_exps}
    changed += [f"experiment {n!r} removed" for n in old_by if n not in new_by]
    changed += [f"experiment {n!r} added" for n in new_by if n not in old_by]
    for name in (n for n in new_by if n in old_by and old_by[n] != new_by[n]):
        (_, old_factor, old_test, old_vars), (_, factor, test, variants) = (old_by[name],
                                                                            new_by[name])
        if old_factor != factor:
            changed.append(f"experiment {name!r} factor {old_factor} -> {factor}")
        if old_test != test:
            changed.append(f"experiment {name!r} test {json.dumps(old_test)} -> "
                           f"{json.dumps(test)}")  # as the file writes it: false, not False
        if old_vars != variants:
            labels = [[str(v[0]) for v in vs] for vs in (old_vars, variants)]
            changed.append(f"experiment {name!r} variants {', '.join(labels[0])} -> "
                           f"{', '.join(labels[1])}" if labels[0] != labels[1] else
                           f"experiment {name!r} variants' settings")
    if not changed and [e[0] for e in old_exps] != [e[0] for e in new_exps]:
        changed.append("the experiments' order")
    if old_choose != new_choose:
        changed.append(f"final choose {old_choose} -> {new_choose}")
    # a key the final does not set is the base's or the best variant's, not train's default
    changed += _dict_changes("final", old_final or {}, new_final or {}, absent="(not set)")
    return changed or ["a setting written another way, such as 1 against 1.0"]


def _dict_changes(where: str, old: dict[str, Any], new: dict[str, Any],
                  absent: str = "(default)") -> list[str]:
    def shown(d: dict[str, Any], k: str) -> str:
        return json.dumps(d[k]) if k in d else absent
    keys = [k for k in {**old, **new} if old.get(k, ...) != new.get(k, ...)]
    return [f"{where} {k} {shown(old, k)} -> {shown(new, k)}{_reworded(k, old, new)}"
            for k in keys]


def _reworded(key: str, old: dict[str, Any], new: dict[str, Any]) -> str:
    """" (the same ..., written another way)" where an augment text was only reworded: run
    names hash the text as written, so the runs stored under the old one would not be found."""
    if key != "augment" or not all(isinstance(d.get(key), str) for d in (old, new)):
        return ""
    try:
        same = (TrainConfig(augment=old[key]).augmentation
                == TrainConfig(augment=new[key]).augmentation)
    except MnistlabError:
        return ""
    return " (the same augmentation written another way: the runs are stored under the " \
        "first)" if same else ""


def _claim(store: Store, out: Path, spec: StudySpec) -> Placement:
    """With the lock held: check again (another process may have been first), then record
    which study this folder belongs to, and where its relative dataset paths are. Returns the
    placement its run keys are made with."""
    from ..data.dataset import relative_folders

    check_study_folder(out, spec)
    if (store.identity() is None or store.identity_settings() is None
            or store.identity() != study_identity(spec)):  # respelled_alike: as spelt now
        store.set_identity(study_identity(spec), identity_settings(spec))
    ours = _identity_record(spec)
    if _kept_identity(out) != ours:  # written once, and again by folders made before it
        files.write_json(out / IDENTITY_FILE, ours)
    folders = relative_folders([c.dataset for c in _reading(spec)], store.dataset_folders(),
                               "study")
    if folders != store.dataset_folders():
        store.set_dataset_folders(folders)
    return key_placement(store, out, spec)


def _rows(plan: Plan, done: dict[str, dict[str, Any]]) -> list[Row]:
    rows = []
    for cell in plan.cells:
        run = plan.runs[cell.key]
        source = run.snapshot_of or run.key
        if source not in done:
            raise MnistlabError(f"run {source} is missing from the study store; re-run the study")
        record = done[source]
        epoch = run.snapshot_epoch if run.snapshot_of else 0
        if epoch and len(record.history) < epoch:
            epoch = 0  # the source stopped early (diverged): report what it has
        row = row_from(cell, record.summary, record.history, epoch)
        row.read_from = source if source != run.key else ""
        rows.append(row)
    return rows


def base_rows(rows: Iterable[Row]) -> list[Row]:
    """The base configuration's runs, one per seed, in seed order (experiments that include
    the base value share its runs: counted once each, or the noise estimate would shrink)."""
    by_seed: dict[int, Row] = {}
    for r in rows:
        if r.is_base:
            by_seed.setdefault(r.seed, r)
    return [by_seed[s] for s in sorted(by_seed)]


def best_variants(spec: StudySpec, rows: list[Row]) -> dict[str, tuple[str, float]]:
    """experiment -> (label of the variant with the best mean validation accuracy, mean). A
    tie goes to the reference, as in the report's summary: the base's value, else the first
    listed (the summary said "keep the base value" and the final model took the other)."""
    best: dict[str, tuple[str, float]] = {}
    for exp in spec.experiments:
        means = {}
        for v in exp.variants:
            vals = [r.val_accuracy for r in rows if r.experiment == exp.name and r.value == v.label
                    and math.isfinite(r.val_accuracy)]
            if vals:
                means[v.label] = summarize(vals).mean
        if means:
            reference = next((r.value for r in rows if r.experiment == exp.name and r.is_base),
                             next(iter(means)))
            label = max(means, key=lambda label: (means[label], label == reference))
            best[exp.name] = (label, means[label])
    return best


def _choose_final(spec: StudySpec, rows: list[Row]) -> TrainConfig | None:
    """Each experiment's best variant, combined; applied from the lowest best mean up, so
    where two experiments set one setting (an lr factor and a variant with its own lr) the
    better one's value is kept, not the later one's."""
    best = best_variants(spec, rows)
    base = [r.val_accuracy for r in base_rows(rows) if math.isfinite(r.val_accuracy)]
    base_mean = summarize(base).mean if base else -math.inf
    changes = {}
    # an experiment without the base value whose best is not above the base's runs changes
    # nothing (its best was chosen, a worse final than the base itself; on a tie the summary
    # says to keep the base value)
    for exp in sorted((e for e in spec.experiments if e.name in best
                       and best[e.name][1] > base_mean), key=lambda e: best[e.name][1]):
        label = best[exp.name][0]
        changes[exp.name] = next(v.changes for v in exp.variants if v.label == label)
    return final_config(spec, changes)
