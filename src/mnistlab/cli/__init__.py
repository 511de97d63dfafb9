"""The `mnistlab` command: parse flags -> settings and options -> call the API -> print.

Each subcommand lives in a module of its own here (train.py, study.py, data.py, use.py,
completion.py), as a pair of functions: one adds its flags, one runs it. Flags are read off
what they set: every
`TrainConfig` field is a flag of the same name (`batch_size` -> `--batch-size`) with the help
text and choices the field itself carries; study and search flags become StudyOptions and
TuneOptions, which check them. A user mistake becomes one line on stderr and a non-zero exit
code; tracebacks are kept for bugs. Only the subcommand that runs is built (and imports what it
needs), so `mnistlab --help` answers at once.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import os
import shlex
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, interrupt
from ..errors import MnistlabError, did_you_mean, own_warnings_in_one_line
from ..messages import t
from . import completion, data, study, train, use
from .common import error_line, stderr


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subcommands: dict[str, argparse.ArgumentParser] = {}
        self.words: list[str] = []

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # one line plus where to look, exit 2
        self.exit(2, f"{self.prog}: error: {message}{_dash_files(self.words)} "
                     f"(see `{self.prog} --help`)\n")


def _dash_files(words: list[str]) -> str:
    """A hint when a file named like a flag (-x.png) was read as one."""
    files = [w for w in words if w.startswith("-") and w not in ("-", "--") and "=" not in w
             and os.path.lexists(w)]
    if not files:
        return ""
    return (f"; {files[0]} is a file: write it as ./{files[0]} (or put -- before the "
            "file names) so it is not read as a flag")


Adder = Callable[[argparse.ArgumentParser], None]
Runner = Callable[[argparse.Namespace], int]

# name -> (one-line help, description, how its flags are added, how it runs)
COMMANDS: dict[str, tuple[str, str, Adder, Runner]] = {
    "train": ("train one model and write a run folder",
              "Train one model. Settings come from the defaults, then --recipe, then --config "
              "FILE, then flags. The run folder gets config.toml (reproduces the run), "
              "metrics.csv, summary.json, model.pt, curves.png and confusion.png.",
              train.add_train, train.run_train),
    "evaluate": ("score a trained run on the val or test split", train.EVALUATE,
                 train.add_evaluate, train.run_evaluate),
    "data": ("fetch, locate and inspect datasets",
             "Fetch, locate and inspect datasets: MNIST and Fashion-MNIST by name, or a folder "
             "of the four IDX files of your own. `mnistlab data COMMAND --help` says more.",
             lambda p: data.add_data(p, _Parser), data.run_data),
    "doctor": ("name what went wrong in a run or study folder",
               "Reads a run's epochs and summary (or every run of a study or search) and names "
               "the failure signatures it finds: a learning rate too high or too low, a loss "
               "that does not fit the metric (the LeNet challenge's 0.9000), collapse to one "
               "class, overfitting, labels with no signal, data that is not what it says, and "
               "more (docs/doctor.md shows each). Each finding gives its evidence, what it "
               "means and a fix. Exit 0 when nothing is wrong, 1 when a problem is found, 2 "
               "when a folder is no run's.",
               data.add_doctor, data.run_doctor),
    "study": ("run a study (preset or TOML file) and write its report", study.STUDY,
              study.add_study, study.run_study),
    "tune": ("search hyperparameters with Optuna (pruning, resumable, many workers)",
             study.TUNE, study.add_tune, study.run_tune),
    "predict": ("predict the class of your own images (files or folders)", use.PREDICT,
                use.add_predict, use.run_predict),
    "export": ("export a trained run to ONNX, checked against PyTorch",
               "Export a trained run (an ensemble's too) to ONNX, with the run's preprocessing "
               "written beside it in a sidecar .json. Before writing, it checks that onnxruntime "
               "gives PyTorch's logits for random images (--no-check skips that; "
               "docs/export.md says more).",
               use.add_export, use.run_export),
    "completion": ("print the shell's tab-completion script (bash, zsh, tcsh)",
                   completion.COMPLETION, completion.add_completion, completion.run_completion),
}


class _AsWritten(str):
    """Help text kept as written (line breaks and indents: examples, steps)."""


class _Formatter(argparse.HelpFormatter):
    """A description filled to the terminal's width, as argparse fills it; an epilog of
    examples kept as written (RawDescriptionHelpFormatter keeps both, so a long description
    ran past a narrow terminal)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if isinstance(text, _AsWritten):
            return "\n".join(_as_written(text, width, indent))
        return super()._fill_text(text, width, indent)


def _as_written(text: str, width: int, indent: str) -> list[str]:
    """Indented lines (commands) as written; the prose between them filled to `width` (it ran
    past a narrow terminal), each run of prose lines one paragraph, a line ending in ":" (a
    heading of the commands below it) its own."""
    import textwrap

    lines: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            lines.extend(textwrap.wrap(" ".join(prose), width, initial_indent=indent,
                                       subsequent_indent=indent, break_on_hyphens=False))
            prose.clear()

    for line in text.splitlines():
        if not line.strip() or line.startswith(" "):
            flush()
            lines.append(indent + line if line.strip() else "")
        else:
            prose.append(line.strip())
            if line.rstrip().endswith(":"):
                flush()
    flush()
    return lines


START = """\
where to start:
99% on MNIST in seconds, then your own images, read the way MNIST was made:
  mnistlab train --recipe mnist-fast --out runs/fast
  mnistlab predict runs/fast my-digit.png
the LeNet challenge's 0.9000 plateau reproduced and fixed; the Fashion-MNIST study with its
report in Spanish:
  mnistlab study lenet-challenge --quick
  mnistlab study fashion-hparams --lang es
what went wrong in a run or a study, by name:
  mnistlab doctor runs/fast

Each command's --help lists its flags, their defaults and examples."""

# Text after a subcommand's flags, kept as written: examples, steps.
# a few command lines each, as a user types them (tests/test_cli.py parses every one)
EXAMPLES = {
    "train": """\
examples:
  mnistlab train --recipe list
  mnistlab train --recipe mnist-fast --out runs/fast
  mnistlab train --dataset fashion-mnist --model mlp --hidden 128,64 --optimizer adam \\
      --lr 0.001 --epochs 30 --out runs/mlp
  mnistlab train --config runs/mlp/config.toml --seed 1 --out runs/mlp-seed1
your own data, a folder of the four IDX files:
  mnistlab train --dataset ./my-idx-folder --out runs/mine""",
    "evaluate": """\
examples:
  mnistlab evaluate runs/fast
  mnistlab evaluate runs/fast --split val --json
a run whose data folder moved since:
  mnistlab evaluate runs/mine --dataset ./moved-idx-folder""",
    "data": """\
examples:
  mnistlab data fetch mnist
  mnistlab data info mnist
  mnistlab data path fashion-mnist
the published files, downloaded already:
  mnistlab data fetch fashion-mnist --from ~/Downloads/fashion""",
    "doctor": """\
examples:
  mnistlab doctor runs/fast
  mnistlab doctor studies/lenet-challenge-quick
  mnistlab doctor runs/a runs/b runs/c""",
    "study": """\
examples:
  mnistlab study --list
  mnistlab study lenet-challenge --quick
  mnistlab study fashion-hparams --seeds 5 --lang es --out studies/fh
  mnistlab study my-study.toml --workers 2""",
    "predict": """\
examples:
  mnistlab predict runs/fast my-digit.png
  mnistlab predict runs/fast photos/ --top 3 --show sheet.png
  cat digit.png | mnistlab predict runs/fast -""",
    "export": """\
examples:
  mnistlab export runs/fast --out fast.onnx
the test-time views inside the graph (a run trained with --tta has them already):
  mnistlab export runs/best --out best.onnx --tta""",
}
EPILOGS = {**{name: _AsWritten(text) for name, text in EXAMPLES.items()},
           "tune": _AsWritten(study.TUNE_EXAMPLES), "completion": _AsWritten(completion.INSTALL)}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `command` only that subcommand's flags (the others are listed
    by name and help, which is all `mnistlab --help` shows; "" adds none)."""
    parser = _Parser(prog="mnistlab", description=(
        "Train, diagnose and tune small image classifiers on MNIST-family data."),
        formatter_class=_Formatter, epilog=_AsWritten(START))
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, description, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=description or help_text,
                           formatter_class=_Formatter, epilog=EPILOGS.get(name))
        if command in (None, name):
            add(p)
        p.set_defaults(func=run)
        parser.subcommands[name] = p
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from_shell = argv is None  # the console script, not a call from Python (tests, notebooks)
    if from_shell:
        _output_that_any_terminal_takes()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else "")
    named = next((a for a in argv if a in COMMANDS), None)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version") \
            and named is not None:  # mnistlab --lang es study ...: said as such, not "'es'"
        rest = list(argv)
        rest.remove(named)
        parser.error(f"the command comes first, then its options: mnistlab "
                     f"{shlex.join([named, *rest])}")
    if named is None:
        _no_command(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command they were given to, whose --help lists its flags
        sub = parser.subcommands[args.command]
        flags = [f for f in sub._option_string_actions if f.startswith("--")]
        typo = next((a.split("=")[0] for a in extra if a.startswith("--")), "")
        sub.error(f"unrecognized arguments: {shlex.join(extra)}"  # --optimiser: no hint (hunt)
                  f"{_flag_hint(typo, flags) if typo else ''}")
    _matplotlib_config_where_it_can_be_written()
    try:
        return _run(args)
    finally:
        if from_shell:  # the work is done and said: a Ctrl-C now, while Python shuts down
            interrupt.ignore_signals()  # (atexit hooks), printed a traceback and exit 0


def _no_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """No command among the words: said as such (hunt: `mnistlab trian` got no hint,
    `mnistlab --lang es` "invalid choice: 'es'", `mnistlab -v` "required: command"). --help
    and --version are left to argparse."""
    if argv[:1] in (["-h"], ["--help"], ["--version"]):
        return
    names = ", ".join(COMMANDS)
    if not argv:
        parser.error(f"give a command: {names}")
    word = argv[0] if not argv[0].startswith("-") else next(
        (a for a in argv if not a.startswith("-") and did_you_mean(a, [*COMMANDS])), None)
    if word is not None:
        # `trian -h`, `--lang es trian`: the misspelt command, not argparse's "invalid
        # choice" nor "options go after a command ... COMMAND --lang es trian" (review)
        parser.error(f"unknown command {word!r}{did_you_mean(word, list(COMMANDS))}; the "
                     f"commands: {names}")
    parser.error(f"unrecognized arguments: {shlex.join(argv)}; options go after a "
                 f"command (one of {names}): mnistlab COMMAND {shlex.join(argv)}")


# what other tools call a flag, which no spelling distance finds: --out-dir was told
# --data-dir, --wd --seed, --version --precision, --gpu --out (hunt)
OTHER_FLAGS = {"--out-dir": "--out", "--output": "--out", "--output-dir": "--out",
               "--outdir": "--out", "--gpu": "--device cuda", "--cuda": "--device cuda",
               "--cpu": "--device cpu", "--version": "`mnistlab --version`, before the command"}


def _flag_hint(typo: str, flags: list[str]) -> str:
    """' (did you mean --lr?)' for an unknown flag: another tool's name for one of ours first
    (a settings file's other names too: --learning-rate), else the nearest spelling."""
    from ..config import OTHER_NAMES

    key = typo.lower().replace("_", "-")
    other = OTHER_FLAGS.get(key) or next(
        (f"--{ours.replace('_', '-')}" for theirs, ours in OTHER_NAMES.items()
         if key == f"--{theirs.replace('_', '-')}"), None)
    if other is not None:  # ours, or nothing where this command has none (review: --gpu
        # to export, which takes no --device, was told --out)
        return f" (did you mean {other}?)" if other.split()[0] in [*flags, "`mnistlab"] else ""
    return did_you_mean(typo, flags)


def _output_that_any_terminal_takes() -> None:
    """A character the terminal's encoding lacks (PYTHONIOENCODING=ascii, a latin-1 pipe: the
    summary's "·", a path's "γ") is written as an escape: it raised UnicodeEncodeError once
    the work was done, a traceback and exit 1 for a finished run."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict":  # a C locale's surrogateescape kept
            with contextlib.suppress(AttributeError, ValueError):  # not a text file: as is
                stream.reconfigure(errors="backslashreplace")


def _run(args: argparse.Namespace) -> int:
    """The command, its errors said in one line with their exit codes."""
    with interrupt.handling(), _own_warnings_in_one_line():  # Ctrl-C/SIGTERM: training
        # stops after its step, work is kept
        try:
            interrupt.take_held()  # a Ctrl-C while the command started: stop now
            code = int(args.func(args) or 0)
            if code == 0 and interrupt.requested():
                # the signal came after the last check of a loop that was listening: the
                # work got done (its closing line is above), and the stop asked for is said,
                # with 130/143, but not "run the same command again to continue" (hunt)
                stderr.print(t(getattr(args, "lang", None) or "en", "cli.interrupted_done"))
                return interrupt.exit_code()
            return code
        except MnistlabError as exc:
            return error_line(str(exc), exc.exit_code)
        except BrokenPipeError:  # `mnistlab ... | head`: the reader has what it wanted
            _quiet_stdout()
            return 141  # what a shell reports for a process its pipe's SIGPIPE ended
        except OSError as exc:  # the disk, not a bug: full, read-only, gone
            return _disk_error(exc.errno, exc.filename, exc.strerror or str(exc))
        except RuntimeError as exc:  # Python before 3.13: a loop met resolving a path,
            loop = exc.__context__  # raised while handling the OSError (ELOOP) that named it
            if not (isinstance(loop, OSError) and loop.errno == errno.ELOOP):
                raise
            return _disk_error(errno.ELOOP, loop.filename, os.strerror(errno.ELOOP))
        except KeyboardInterrupt:  # in the job's language, as its closing line would be
            stderr.print(t(getattr(args, "lang", None) or "en", "cli.interrupted"))
            return interrupt.exit_code()


# What to do about an error of the disk, by its errno (anything else: _ANY_ADVICE)
_ANY_ADVICE = "free space or fix the permissions"
_ADVICE = {
    errno.ENOSPC: "free space on that disk",
    errno.EACCES: "fix its permissions, or give a path you may read (and, for output, write)",
    errno.EROFS: "give a folder on a disk that is not read-only",
    errno.EEXIST: "a file stands where mnistlab makes a folder: move or rename it",
    errno.ENOTDIR: "a file stands where the path needs a folder: move or rename it",
    errno.EISDIR: "a folder stands where mnistlab writes a file: move or rename it",
    errno.ENAMETOOLONG: "give a shorter path",
}
_ADVICE[errno.EPERM] = _ADVICE[errno.EACCES]
if hasattr(errno, "EDQUOT"):  # not on every platform
    _ADVICE[errno.EDQUOT] = "free space (the disk quota is used up)"


_ADVICE[errno.ELOOP] = "a symbolic link on that path leads back to itself: give a real folder"
# errors of the path given, not of the disk: running the same command again cannot help
_OF_THE_PATH = {errno.ENAMETOOLONG, errno.ELOOP}


def _disk_advice(code: int | None) -> str:
    return _ADVICE.get(code or 0, _ANY_ADVICE)


def _disk_error(code: int | None, filename: Any, problem: str) -> int:
    """An OSError's one line: the file, the problem, what to do; exit 2 where the path given
    is wrong (too long, a loop of links), else 1, the same command to be run again."""
    where = f"{filename}: " if filename else ""
    if code in _OF_THE_PATH:
        return error_line(f"{where}{problem}; {_disk_advice(code)}", 2)
    return error_line(f"{where}{problem}; {_disk_advice(code)}, then run the same command "
                      "again (finished work is kept)", 1)


def _quiet_stdout() -> None:
    """Point stdout at the null device, so that Python's flush at exit does not fail (and
    print a traceback) on the closed pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (a test's capture): nothing to flush
        pass


@contextlib.contextmanager
def _own_warnings_in_one_line() -> Iterator[None]:
    """mnistlab's own warnings as `warning: ...` lines while a command runs (see
    errors.own_warnings_in_one_line)."""
    formatted = own_warnings_in_one_line()
    try:
        yield
    finally:
        warnings.formatwarning = formatted


def _matplotlib_config_where_it_can_be_written() -> None:
    """A HOME that is a file, missing or read-only (containers, batch jobs) made matplotlib
    print two lines of advice about MPLCONFIGDIR on every command that draws. Where its
    settings or cache folder cannot be made, it is given a temporary one (removed at exit), as
    it would take itself, without the advice; a MPLCONFIGDIR of the user's own is left alone.
    Nothing is created here."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no user entry
        home = None
    if home is not None:
        if sys.platform.startswith(("linux", "freebsd")):
            folders = [Path(os.environ.get(variable) or home / default) / "matplotlib"
                       for variable, default in (("XDG_CONFIG_HOME", ".config"),
                                                 ("XDG_CACHE_HOME", ".cache"))]
        else:
            folders = [home / ".matplotlib"]
        if all(_can_make(folder) for folder in folders):
            return
    folder = tempfile.mkdtemp(prefix="mnistlab-matplotlib-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = folder


def _can_make(folder: Path) -> bool:
    """Whether `folder` is a writable folder or could be made: its nearest existing parent is
    one."""
    for path in (folder, *folder.parents):
        if path.exists():
            return path.is_dir() and os.access(path, os.W_OK)
    return False


if __name__ == "__main__":
    sys.exit(main())
