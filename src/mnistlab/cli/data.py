"""`mnistlab data` (fetch, path, info) and `mnistlab doctor`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from .. import files
from ..config import DATA_DIR_HELP
from ..errors import MnistlabError
from .common import (
    add_lang,
    as_output,
    error_line,
    path_text,
    print_findings,
    stderr,
    stdout,
    unread_data_dir,
    warn_line,
)


def add_data(p: argparse.ArgumentParser, sub_parser: type) -> None:
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=sub_parser,
                                metavar="{fetch,info,path}")  # not "data_command" (hunt)
    q = data_sub.add_parser("fetch", help="download (mirrors, checksums) or import a dataset",
                            description="Download (mirrors in order, SHA-256 checked) or import "
                            "a dataset into the user cache: $MNISTLAB_CACHE, else the "
                            "platform's cache folder (~/.cache/mnistlab on Linux). Where "
                            "$MNISTLAB_DATA (or a system folder) already holds a good copy, "
                            "every command reads that one and nothing is downloaded, unless "
                            "--mirror is given.")
    q.add_argument("name", metavar="DATASET", help="mnist or fashion-mnist")
    q.add_argument("--from", dest="source", metavar="DIR",
                   help="import this folder of IDX files (gzipped or raw) instead of downloading")
    q.add_argument("--mirror", action="append", metavar="URL",
                   help="download from this base URL (an internal copy, say; <URL>/<file>.gz "
                   "is fetched) instead of the published mirrors; repeat it for several, "
                   "tried in order. Each file is checked against its published SHA-256 all "
                   "the same. A proxy is taken from HTTPS_PROXY / HTTP_PROXY")
    q.add_argument("--quiet", action="store_true", help="no download progress")
    for name, help_text in (("info", "where a dataset is and what it holds"),
                            ("path", "print the folder a dataset is read from")):
        q = data_sub.add_parser(name, help=help_text)
        q.add_argument("name", metavar="DATASET|DIR", help="mnist, fashion-mnist or a folder")
        q.add_argument("--data-dir", metavar="DIR", type=path_text, help=DATA_DIR_HELP)
        if name == "info":
            q.add_argument("--json", action="store_true", help="print JSON")


def run_data(args: argparse.Namespace) -> int:
    from .. import data

    for line in unread_data_dir(getattr(args, "data_dir", None), args.name, ""):
        warn_line(line)
    if args.data_command == "fetch":
        # where another copy is read from (MNISTLAB_DATA, a system folder), looked for once:
        # its files are hashed, and its warnings were said twice (hunt)
        found = _found_elsewhere(args.name)
        if args.source:
            if args.mirror:
                raise MnistlabError("--mirror: --from imports a folder and downloads nothing; "
                                    "give one of the two")
            path = data.import_folder(args.name, args.source)
        elif not args.mirror and found is not None:
            stdout.print(f"{args.name}: already in {escape(str(found[0]))} ({found[1]}), where "
                         "every command reads it; nothing downloaded (give --mirror URL to "
                         "download a copy into the cache)", soft_wrap=True)
            return 0
        else:
            # a bar where someone watches: in a log, each transient bar left a blank line
            path = data.fetch(args.name, mirrors=args.mirror,
                              progress=not args.quiet and stderr.is_terminal)
        stdout.print(f"{args.name}: ready in {escape(str(path))}{_read_first(found)}",
                     soft_wrap=True)
    elif args.data_command == "path":
        folder = data.dataset_folder(args.name, data_dir=args.data_dir)
        _check_holds_a_dataset(folder)
        print(folder)
    else:
        info = data.dataset_info(args.name, data_dir=args.data_dir)
        if args.json:
            print(files.json_text(info, indent=2, default=str))
            return 0
        from rich.table import Table

        table = Table(title=f"dataset {escape(args.name)}", show_header=False)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")  # a long folder whole, folded (it was cut: hunt)
        for key, value in info.items():
            table.add_row(str(key), escape(_cell(value)))  # a folder named "x [v2]"
        stdout.print(table)
    return 0


def _found_elsewhere(name: str) -> tuple[Path, str] | None:
    """Where a good copy of a known dataset is read from outside the cache (MNISTLAB_DATA, a
    system folder), or None: `data fetch mnist` with it there downloaded all the same, and
    failed offline. A damaged copy there is None: the fetch goes on (and reading it says why
    the cache's copy is not the one read)."""
    from ..data.sources import FILES, KNOWN_DATASETS, find_file, locate, read_verified

    if name not in KNOWN_DATASETS:
        return None
    try:
        folder, how = locate(name)
        if how == "cache":
            return None
        for stem in FILES:
            read_verified(name, stem, find_file(folder, stem))
    except MnistlabError:
        return None
    return folder, how


def _read_first(found: tuple[Path, str] | None) -> str:
    """What a copy read before the cache's (`found`) adds to "ready in <cache>": the copy just
    fetched or imported was said to be ready where no command would read it (hunt:
    MNISTLAB_DATA first)."""
    if found is None:
        return ""
    return (f"; commands read the copy in {escape(str(found[0]))} ({found[1]}) first"
            + ("; unset MNISTLAB_DATA to read this one" if found[1] == "MNISTLAB_DATA" else ""))


def _cell(value: Any) -> str:
    """A table cell a reader reads: lists joined by "; " (", " read "5,923, 6,742" as four
    counts, and split a class named "T-shirt, top"), tables one `key: value` per line."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}"
                         for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def add_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="+", metavar="RUN_DIR|STUDY_DIR",
                   help="one or more (e.g. runs/*): each run folder, or every run in a study, "
                   "search or folder of runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_lang(p, "findings'")


def run_doctor(args: argparse.Namespace) -> int:
    from ..doctor import problems
    from ..messages import t
    from ..runs import examine

    report: dict = {}
    refused: dict[str, str] = {}  # with several folders, one that is no run's is said; the
    # others examined
    for path in args.path:
        try:
            report |= examine(path)
        except MnistlabError as exc:
            if len(args.path) == 1:
                raise
            refused[path] = str(exc)
    if args.json:
        print(as_output(files.json_text({run: [f.to_dict(args.lang) for f in found]
                                         for run, found in report.items()},
                                        indent=2, ensure_ascii=False), True))
    else:
        names = _study_run_names(report, args.lang)
        for run, found in report.items():
            named = escape(run) + (f" ({escape(names[run])})" if run in names else "")
            if found:
                stdout.print(f"[bold]{named}[/]", soft_wrap=True)  # a path: one line
                print_findings(found, args.lang)
            else:
                stdout.print(f"[bold]{named}[/]: [green]{t(args.lang, 'cli.nothing_wrong')}[/]",
                             soft_wrap=True)
    examined = [path for path in args.path if path not in refused]
    for path in examined:  # its runs say nothing of those it has not started
        _say_study_unfinished(Path(path), args.lang)
    for message in refused.values():
        error_line(message, 2)
    if refused:
        return 2
    return 1 if any(problems(found) for found in report.values()) else 0


def _say_study_unfinished(path: Path, lang: str) -> None:
    """A note where `path` is a study that has not finished: training now, stopped before
    its results (its runs say nothing of those it has not started), or stopped while writing
    its report (killed, a full disk: "nothing wrong found" and exit 0 said it was whole)."""
    from ..messages import t

    if not (path / "study.db").is_file():
        return
    if files.held(path / "study.lock"):
        warn_line(t(lang, "cli.study_running", path=path))
    elif not (path / "results.csv").is_file():
        warn_line(t(lang, "cli.study_unfinished", path=path))
    elif not all((path / name).is_file() for name in ("report.md", "report.html")):
        warn_line(t(lang, "cli.study_no_report", path=path))


def _study_run_names(report: dict[str, Any], lang: str) -> dict[str, str]:
    """{run folder: "lr=0.01, seed 1"} for the runs of a study (STUDY/runs/KEY), as its
    report names them (study.run.run_names): a study's run folders are named by keys that
    say nothing to a reader."""
    from ..study.run import run_names

    names: dict[str, str] = {}
    studies: dict[Path, dict[str, str]] = {}
    for run in report:
        folder = Path(run)
        if folder.parent.name == "runs":
            study = folder.parent.parent
            if study not in studies:
                studies[study] = run_names(study, lang)
            if folder.name in studies[study]:
                names[run] = studies[study][folder.name]
    return names


def _check_holds_a_dataset(folder: Path) -> None:
    """A folder given by path is printed only if it holds the four IDX files (a known name is
    found only where it does): `data path /tmp` printed /tmp."""
    from ..data.sources import FILES, missing_files

    missing = missing_files(folder)
    if missing:
        lacks = ("holds none of the four IDX files" if len(missing) == len(FILES) else
                 "lacks " + ", ".join(f"{stem}[.gz]" for stem in missing))
        raise MnistlabError(f"{folder}: not a dataset folder (it {lacks}); give a folder "
                            "holding the four IDX files")

