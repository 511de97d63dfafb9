"""The search report: best trial, trials, history, importances, parallel and slice plots, and
the best configuration retrained with several seeds and scored once on the test set.

Every sentence is chosen from the numbers; written as report.md (+ PNGs in plots/) and a
self-contained report.html, in English or Spanish, like the study report.
"""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING, Any

from .. import files
from ..config import TrainConfig
from ..figures import localised
from ..messages import (
    choice_text,
    factor_text,
    listed,
    number,
    setting_label,
    settings_text,
    t,
    value_said,
)
from ..models import settings_unread, shape_settings
from ..study.stats import paired, summarize
from ..tune.search import diverged, lost_retry, max_epochs, was_cut
from ..tune.space import encode_choice
from . import tune_plots as plots
from .document import (
    Bullets,
    Document,
    Heading,
    Image,
    Paragraph,
    Table,
    origin_line,
    to_html,
    to_markdown,
)
from .study import changed_settings, interval_said

if TYPE_CHECKING:
    from pathlib import Path

    from ..tune.search import TuneResult
    from ..tune.space import Param

# the data a search trains and judges on, where it is not the default (a search on 1,500
# images with 500 for validation did not say so outside a --quick one)
DATA_SETTINGS = ("train_subset", "val_from", "val_size", "eval_train_size")
DEFAULTS = TrainConfig()
# complete trials below which the conclusions call the importance ranking rough: 8 trials
# named "the most important setting" at 0.45 +- 0.08, and a ninth moved it to 0.55 and two
# others past each other (hunt)
STEADY_TRIALS = 30


def _key_settings(config: TrainConfig, *models: str) -> list[str]:
    """The settings a reader looks for first; of the layer sizes, only those the models have;
    the data's, where `config` changes them; then every other one it changes from `train`'s
    defaults (an ensemble, label smoothing: left out of the base and the best configuration,
    which best.toml trains with; hunt), the seed and where it trains apart."""
    shapes = [k for model in models for k in shape_settings(model)]
    data = [k for k in DATA_SETTINGS if getattr(config, k) != getattr(DEFAULTS, k)]
    return changed_settings(config, ["dataset", *data, "model", *dict.fromkeys(shapes),
                                     "activation", "dropout", "optimizer", "lr", "momentum",
                                     "weight_decay", "schedule", "batch_size", "epochs"])


def _read_settings(config: TrainConfig, searched: Any = ()) -> list[str]:
    """The key settings one configuration trains with, and those searched: none it does not
    read (momentum beside Adam was shown in the best trial's full configuration). Not for
    the base of a search, whose trials may draw what reads them."""
    unread = settings_unread(config)
    keys = _key_settings(config, config.model)
    return [k for k in keys + [k for k in searched if k not in keys] if k not in unread]


def _settings(values: dict[str, Any], lang: str, keys: Any = None) -> str:
    """`lr=0.006431, hidden=128-64`: a searched float to 4 significant digits, in `lang`'s
    decimal mark, true and false as the space file writes them (nesterov=False stood beside
    the space table's false); unset (empty) settings left out."""
    keys = keys if keys is not None else values
    return settings_text({k: _shown(values[k], lang) for k in keys
                          if k in values and values[k] != ""}, lang)


def _shown(value: Any, lang: str) -> Any:
    """A setting's value as the report's settings texts give it (see _settings)."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return choice_text(value) if isinstance(value, bool) and lang == "en" else value


def _pct(value: float | None, lang: str) -> str:
    return "—" if value is None or not math.isfinite(value) else number(value * 100, ".2f", lang)


def _last(trial: Any) -> tuple[float, int]:
    steps = trial.intermediate_values
    if not steps:
        return math.nan, 0
    epoch = max(steps)
    return steps[epoch], epoch


def _trial_value(trial: Any) -> float:
    return trial.value if trial.value is not None else _last(trial)[0]


def build_document(result: TuneResult, lang: str = "en", origin: str = "") -> Document:
    spec = result.spec
    doc = Document(spec.text("title", lang) or spec.name, lang, origin=origin)
    if spec.description:
        doc.add(Paragraph(spec.text("description", lang)))
    _method(doc, result, lang)
    _best(doc, result, lang)
    _retrain(doc, result, lang)
    _trials(doc, result, lang)
    _history(doc, result, lang)
    _importances(doc, result, lang)
    _parallel_and_slices(doc, result, lang)
    _conclusions(doc, result, lang)
    doc.add(Paragraph(t(lang, "tune.files")))
    return doc


def _method(doc: Document, result: TuneResult, lang: str) -> None:
    spec = result.spec
    doc.add(Heading(1, t(lang, "method")))
    if spec.is_quick:
        doc.add(Paragraph(t(lang, "tune.quick")))
    # it said the test set was used, with none; and "once, by the best" beside the compared
    # configuration's test scores (hunt)
    intro = ("tune.intro.no_test" if not result.retrained else
             "tune.intro.compared" if result.compared else "tune.intro")
    doc.add(Paragraph(t(lang, intro, seed=result.seed)))
    doc.add(Paragraph(t(lang, f"tune.pruner.{result.pruner}", max_epochs=max_epochs(spec))))
    doc.add(Paragraph(t(lang, "tune.counts", total=len(result.trials),
                        complete=complete_count(result),
                        pruned=len(result.by_state("PRUNED")), others=other_counts(result, lang),
                        target=result.target, storage=result.storage,
                        study=result.study_name)))
    searched = {p.name: p for p in spec.params}
    base = spec.base.to_dict()
    models = searched["model"].choices if "model" in searched else (spec.base.model,)
    doc.add(Paragraph(t(lang, "tune.base", base=_settings(
        base, lang, [k for k in _key_settings(spec.base, *models) if k not in searched]))))
    doc.add(Heading(2, t(lang, "tune.space")))
    rows = []
    for p in spec.params:
        kind = t(lang, f"tune.type.{p.type}") + (f", {t(lang, 'tune.log')}" if p.log else "")
        cond = (t(lang, "tune.when", cond=" & ".join(
            f"{setting_label(k, lang)} ∈ {{{listed([_choice(k, x, lang) for x in v])}}}"
            if len(v) > 1 else f"{setting_label(k, lang)} = {_choice(k, v[0], lang)}"
            for k, v in p.when.items())) if p.when else t(lang, "tune.always"))
        shown = (listed([_choice(p.name, c, lang) for c in p.encoded_choices])
                 if p.type == "categorical" else
                 p.describe(t(lang, "tune.step"), lang).replace(" (log)", ""))
        rows.append([p.name if lang == "en" else factor_text(p.name, lang), kind, shown, cond])
    doc.add(Table([t(lang, k) for k in ("col.param", "col.type", "col.range", "col.condition")],
                  rows, align=["l", "l", "l", "l"]))


def _best(doc: Document, result: TuneResult, lang: str) -> None:
    doc.add(Heading(1, t(lang, "tune.best")))
    best = result.best
    if best is None:  # none complete, or every complete one diverged
        doc.add(Paragraph(t(lang, "tune.best.diverged" if any(
            diverged(tr) for tr in result.trials) else "tune.best.none")))
        return
    params = {k: result.best_config.to_dict()[k] for k in best.params}
    complete = complete_count(result)  # "the best of 1 ..., so optimistic"; a diverged
    # trial scored 0 was never in the running (review: "best of 5" beside "2 complete")
    doc.add(Paragraph(t(lang, "tune.best.text" if complete > 1 else "tune.best.text.one",
                        number=best.number,
                        val=_pct(best.value, lang) + "%",
                        seed=result.best_config.seed, n=complete,
                        params=f"`{_settings(params, lang)}`")))
    config = result.best_config
    shown = _settings(config.to_dict(), lang, _read_settings(config, best.params))
    again = shlex.quote(str(result.out / "best.toml"))  # as the command was given its --out
    doc.add(Paragraph(t(lang, "tune.best.config", config=f"`{shown}`", path=again)))


def retrained_difference(result: TuneResult, measure: str = "val_accuracy") -> Any:
    """The best configuration's `measure` (a summary's accuracy) less the compared one's,
    retrained on the same seeds: paired by replicate (an ensemble of N steps its seeds by N)."""
    first = result.spec.base.seed
    return paired(*({r.config.replicate_seed(first): getattr(r.summary, measure) for r in runs}
                    for runs in (result.retrained, result.compared)))




def _retrain(doc: Document, result: TuneResult, lang: str) -> None:
    if result.best is None:
        return
    doc.add(Heading(1, t(lang, "tune.retrain")))
    if not result.retrained:
        doc.add(Paragraph(t(lang, "tune.retrain.none")))
        return
    seeds = [r.config.seed for r in result.retrained]
    doc.add(Paragraph(t(lang, "tune.retrain.intro", n=len(seeds),
                        seeds=", ".join(map(str, seeds)), search_seed=result.spec.base.seed)))
    best_val = summarize([r.summary.val_accuracy for r in result.retrained])
    best_test = summarize([r.summary.test_accuracy for r in result.retrained])
    rows = [[t(lang, "tune.row.best"), str(best_val.n), best_val.format(lang=lang),
             best_test.format(lang=lang)]]
    compare = result.spec.compare
    label = result.spec.text("compare_label", lang)
    cmp_val = cmp_test = None
    if compare is not None and result.compared:
        cmp_val = summarize([r.summary.val_accuracy for r in result.compared])
        cmp_test = summarize([r.summary.test_accuracy for r in result.compared])
        rows.append([label, str(cmp_val.n), cmp_val.format(lang=lang), cmp_test.format(lang=lang)])
    on_test = compare is not None and compare.val_from == "test"  # beside our test figure
    if compare is not None and compare.val is not None and not result.spec.is_quick:
        published = number(compare.val, ".2f", lang)
        rows.append([t(lang, "tune.row.published", label=label), "—",
                     *(("—", published) if on_test else (published, "—"))])
    doc.add(Table([t(lang, k) for k in ("col.config", "col.n", "col.val", "col.test")], rows,
                  caption=t(lang, "accuracy_pct")))
    if cmp_val is not None:  # the test set's difference first: the search chose on validation
        diff, test = (retrained_difference(result, m) for m in ("val_accuracy", "test_accuracy"))
        doc.add(Paragraph(t(lang, "tune.compare.ours", label=label,
                            diff=diff.delta * 100, ours=best_val.mean * 100,
                            theirs=cmp_val.mean * 100, why=interval_said(diff, lang),
                            test_diff=test.delta * 100, test_ours=best_test.mean * 100,
                            test_theirs=cmp_test.mean * 100, test_why=interval_said(test, lang))))
    if compare is not None and compare.val is not None:
        if result.spec.is_quick:
            doc.add(Paragraph(t(lang, "tune.compare.quick", published=compare.val)))
        else:
            ours = best_test if on_test else best_val
            doc.add(Paragraph(t(lang, "tune.compare.published_test" if on_test
                                else "tune.compare.published", published=compare.val,
                                label=label, diff=ours.mean * 100 - compare.val,
                                note=(f" ({result.spec.text('compare_note', lang)})"
                                      if compare.note else ""))))


def complete_count(result: TuneResult) -> int:
    """The trials complete and not diverged (a diverged one is counted apart: the closing line
    said "2 complete" of two trials the table called diverged)."""
    return sum(1 for trial in result.by_state("COMPLETE") if not diverged(trial))


def other_counts(result: TuneResult, lang: str) -> str:
    """', 1 diverged, 1 failed, 2 interrupted': the trials neither complete nor pruned, each
    kind named (a Ctrl-C is not a failure), the kinds with none left out."""
    failed = result.by_state("FAIL")
    cut = sum(1 for trial in failed if was_cut(trial))
    lost = sum(1 for trial in failed if lost_retry(trial, result.trials) is not None)
    counts = {"diverged": len(result.by_state("COMPLETE")) - complete_count(result),
              "fail": len(failed) - cut - lost, "cut": cut, "lost": lost,
              "unfinished": len(result.by_state("RUNNING")) + len(result.by_state("WAITING"))}
    return "".join(f", {t(lang, f'tune.count.{kind}', n=n)}" for kind, n in counts.items() if n)


def _state(trial: Any, trials: list[Any], lang: str) -> str:
    name = trial.state.name.lower()  # complete | pruned | fail | running | waiting
    if was_cut(trial):  # Ctrl-C: its settings are queued again
        retry = next((tr.number for tr in trials
                      if tr.user_attrs.get("retry_of") == trial.number), None)
        name = "cut" if retry is None else "cut_retried"
        return t(lang, f"state.{name}" if trial.params else "state.cut_early", retry=retry)
    retry = lost_retry(trial, trials)
    if retry is not None:  # its worker killed: failed by the heartbeat, trained again
        return t(lang, "state.lost", retry=retry)
    return t(lang, "state.diverged" if diverged(trial) else f"state.{name}",
             epoch=_last(trial)[1])


def _trials(doc: Document, result: TuneResult, lang: str) -> None:
    doc.add(Heading(1, t(lang, "tune.trials")))
    doc.add(Paragraph(t(lang, "tune.trials.intro")))
    by_name = {p.name: p for p in result.spec.params}
    rows = []
    for trial in result.trials:
        params = {k: encode_choice(by_name[k].decode(v)) if k in by_name else v
                  for k, v in trial.params.items()}
        seconds = trial.user_attrs.get("seconds")
        rows.append([str(trial.number) + (" ★" if result.best is trial else ""),
                     _state(trial, result.trials, lang), _pct(_trial_value(trial), lang),
                     str(trial.user_attrs.get("epochs", _last(trial)[1] or "—")),
                     "—" if seconds is None else number(seconds, ".1f", lang),
                     _settings(params, lang)])
    # words (state, settings) read from the left, numbers line up on the right
    doc.add(Table([t(lang, k) for k in ("col.tune_trial", "col.state", "col.val", "col.epochs",
                                        "col.seconds", "col.params")], rows,
                  caption=t(lang, "accuracy_pct"), align=["l", "l", "r", "r", "r", "l"]))


def _history(doc: Document, result: TuneResult, lang: str) -> None:
    shown = [tr for tr in result.trials if tr.state.name in ("COMPLETE", "PRUNED")]
    if not shown:
        return
    doc.add(Heading(1, t(lang, "tune.history")))
    labels = {"complete": t(lang, "plot.complete"), "pruned": t(lang, "plot.pruned"),
              "best": t(lang, "plot.best"), "x": t(lang, "plot.trial"),
              "y": t(lang, "plot.val")}
    fig = plots.history([tr.number for tr in shown], [_trial_value(tr) for tr in shown],
                        [tr.state.name == "PRUNED" for tr in shown], labels, lang)
    _image(doc, result.out, "plots/history.png", fig, t(lang, "tune.history.caption"))


def _estimated(result: TuneResult) -> dict[str, list[float]]:
    """The importances of the settings searched over more than one value (one held at a
    single value has nothing to be important for: the conclusions named one all the same)."""
    fixed = {p.name for p in result.spec.params if p.fixed}
    return {name: v for name, v in result.importances.items() if name not in fixed}


def _importances(doc: Document, result: TuneResult, lang: str) -> None:
    doc.add(Heading(1, t(lang, "tune.importance")))
    values = _estimated(result)
    if not values:
        why = result.importance_note
        why = (t(lang, "tune.importance.all_fixed") if all(p.fixed for p in result.spec.params)
               else t(lang, "tune.importance.too_few") if why in ("", "too-few") else why)
        doc.add(Paragraph(t(lang, "tune.importance.none", why=why)))
        return
    repeats = max(len(v) for v in values.values())
    scored = len(result.by_state("COMPLETE"))  # fANOVA reads a diverged trial's 0 too
    gone = scored - complete_count(result)
    doc.add(Paragraph(t(lang, "tune.importance.intro", n=scored, repeats=repeats,
                        diverged=t(lang, "tune.importance.diverged", k=gone) if gone else "")))
    stats = sorted(((name, summarize(v)) for name, v in values.items()),
                   key=lambda item: -item[1].mean)
    rows = [[setting_label(name, lang), s.format(digits=3, scale=1.0, lang=lang),
             f"{number(min(values[name]), '.3f', lang)} – "
             f"{number(max(values[name]), '.3f', lang)}"] for name, s in stats]
    doc.add(Table([t(lang, "col.param"), t(lang, "col.importance"), t(lang, "col.spread")], rows))
    fig = plots.importances([setting_label(n, lang) for n, _ in stats],
                            [s.mean for _, s in stats],
                            [s.sd for _, s in stats], t(lang, "plot.importance", n=repeats))
    _image(doc, result.out, "plots/importances.png", fig, t(lang, "tune.importance"))


def _choice(name: str, value: Any, lang: str) -> str:
    """A searched setting's choice as the report shows it, in tables and on figures alike:
    as the space file writes it in English (true, cosine), in `lang`'s words elsewhere (sí,
    coseno: the Spanish report's figures said "cosine" and "True")."""
    return choice_text(value) if lang == "en" else value_said(name, value, lang)


def _scale(param: Param, lang: str) -> plots.Scale:
    """How a plot draws a searched setting: its choices in the space's order, or its range."""
    if param.type == "categorical":
        return plots.Scale(categories=tuple(_choice(param.name, c, lang)
                                            for c in param.encoded_choices))
    return plots.Scale(low=param.low, high=param.high, log=param.log,
                       whole=param.type == "int")


def _drawn(param: Param, stored: Any, lang: str) -> Any:
    """A trial's value of `param` as its figure's axis places it: a choice by its shown
    name (the scale's categories), a number as it is."""
    value = encode_choice(param.decode(stored))
    return _choice(param.name, value, lang) if param.type == "categorical" else value


def _parallel_and_slices(doc: Document, result: TuneResult, lang: str) -> None:
    complete = result.by_state("COMPLETE")
    if len(complete) < 2:
        return
    by_name = {p.name: p for p in result.spec.params}
    params = {p.name: [_drawn(p, tr.params[p.name], lang) if p.name in tr.params
                       else None for tr in complete] for p in result.spec.params}
    params = {k: v for k, v in params.items()  # a fixed setting is one point on its axis
              if any(x is not None for x in v) and not by_name[k].fixed}
    if not params:  # every setting held at one value: nothing to draw
        return
    scales = {setting_label(k, lang): _scale(by_name[k], lang) for k in params}
    params = {setting_label(k, lang): v for k, v in params.items()}  # the axes in `lang`
    values = [tr.value for tr in complete]
    doc.add(Heading(1, t(lang, "tune.parallel")))
    _image(doc, result.out, "plots/parallel.png",
           plots.parallel(params, values, scales, t(lang, "plot.val"), lang),
           t(lang, "tune.parallel.caption"))
    doc.add(Heading(1, t(lang, "tune.slice")))
    labels = {"y": t(lang, "plot.val"), "colour": t(lang, "plot.trial")}
    _image(doc, result.out, "plots/slices.png",
           plots.slices(params, values, [tr.number for tr in complete], scales, labels,
                        lang),
           t(lang, "tune.slice.caption"))


def _conclusions(doc: Document, result: TuneResult, lang: str) -> None:
    items = []
    if result.retrained:
        val = summarize([r.summary.val_accuracy for r in result.retrained])
        test = summarize([r.summary.test_accuracy for r in result.retrained])
        items.append(t(lang, "tune.concl.best" if val.n > 1 else "tune.concl.best_one",
                       val=val.format(lang=lang, unit="%"), test=test.format(lang=lang, unit="%"),
                       n=val.n))
    finished = result.by_state("COMPLETE") + result.by_state("PRUNED")
    pruned = result.by_state("PRUNED")
    if pruned:
        planned = sum(int(tr.params.get("epochs", result.spec.base.epochs)) for tr in finished)
        reached = sum(int(tr.user_attrs.get("epochs", _last(tr)[1])) for tr in finished)
        items.append(t(lang, "tune.concl.pruned", pruned=len(pruned), finished=len(finished),
                       saved=planned - reached, planned=planned))
    estimated = _estimated(result)
    if estimated:
        name, values = max(estimated.items(), key=lambda kv: summarize(kv[1]).mean)
        s = summarize(values)
        complete = len(result.by_state("COMPLETE"))
        items.append(t(lang, "tune.concl.top" if complete >= STEADY_TRIALS
                       else "tune.concl.top.rough", name=factor_text(name, lang), mean=s.mean,
                       sd=0.0 if math.isnan(s.sd) else s.sd, n=complete))
    if items:
        doc.add(Heading(1, t(lang, "conclusions")))
        doc.add(Bullets(items))


def _image(doc: Document, out: Path, name: str, figure: Any, alt: str) -> None:
    files.save_figure(out / name, localised(figure, doc.lang))
    doc.add(Image(name, alt))


def write_tune_report(result: TuneResult, lang: str = "en", command: str = "") -> Path:
    """report.md (+ plots/) and report.html; `command` is the one that remakes the report."""
    out = result.out
    (out / "plots").mkdir(parents=True, exist_ok=True)
    doc = build_document(result, lang, origin=origin_line(lang, command))
    files.write_document(out / "report.md", to_markdown(doc))
    files.write_document(out / "report.html", to_html(doc, out))
    return out / "report.md"
