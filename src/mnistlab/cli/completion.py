"""`mnistlab completion SHELL`: the shell's tab-completion script, written by shtab from the
whole parser (every subcommand and flag, with their choices), so it never falls behind them."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from typing import Any

from ..config import TrainConfig

SHELLS = ("bash", "zsh", "tcsh")

COMPLETION = "Print the tab-completion script of mnistlab for your shell."

INSTALL = """install it once (the script is read when a shell starts; open a new one):
  bash  mkdir -p ~/.local/share/bash-completion/completions
        mnistlab completion bash > ~/.local/share/bash-completion/completions/mnistlab
        (read by the bash-completion package, which most distributions install)
  zsh   mkdir -p ~/.zfunc && mnistlab completion zsh > ~/.zfunc/_mnistlab
        and in ~/.zshrc, before `compinit`: fpath=(~/.zfunc $fpath)
  tcsh  mnistlab completion tcsh > ~/.mnistlab-completion.tcsh
        and in ~/.tcshrc: source ~/.mnistlab-completion.tcsh
Writing the script to a file, rather than running this command in the shell's startup file,
keeps new shells fast: making the script builds every command's flags. Run it again after
upgrading mnistlab."""

# What a value is, read off its metavar, so that the shell offers folders or files for it.
FOLDERS = {"RUN_DIR", "RUN_DIR|STUDY_DIR", "DIR"}
FILES = {"FILE", "IMAGE", "OUT.png"}


def _names() -> dict[str, tuple[list[str], str]]:
    """Values that are names, by metavar (or dest): the names the shell offers, and what else
    the value may be ("file", "dir" or "" for nothing else)."""
    from ..data.sources import KNOWN_DATASETS
    from ..recipes import RECIPES
    from ..study.spec import list_presets as studies
    from ..tune.space import list_presets as spaces

    datasets = list(KNOWN_DATASETS)
    return {"PRESET|FILE": (studies(), "file"), "SPACE.toml|PRESET": (spaces(), "file"),
            "NAME|DIR": (datasets, "dir"), "DATASET|DIR": (datasets, "dir"),
            "DATASET": (datasets, ""), "recipe": ([*RECIPES, "list"], "")}


def _names_or_paths(key: str, names: list[str], other: str) -> dict[str, Any]:
    """shtab's completion of a value that is one of `names` or a path (`other`: file or dir):
    a bash function offering both, zsh's alternatives; tcsh, whose patterns cannot join a list
    and paths, offers the paths."""
    function = f"_mnistlab_{key}_or_{other}"  # shtab marks "_file"/"_dir" completions as paths
    words = " ".join(names)
    return {"bash": function,
            # inside _arguments' spec a colon ends the action: escaped; the leading space
            # makes _arguments call it as written, without its own options appended
            "zsh": f" _alternative 'names\\:name\\:({words})' "
                   f"'paths\\:path\\:_files{' -/' if other == 'dir' else ''}'",
            "tcsh": "f" if other == "file" else "d",
            "preamble": {"bash": f'{function}() {{\n  compgen -W "{words}" -- "$1"\n'
                                 f'  {_BASH_PATHS[other]}\n}}'}}


# the paths bash offers beside the names: folders, or folders and the TOML files a study or a
# search is (every file was offered: Makefile, README.md; hunt)
_BASH_PATHS = {"dir": 'compgen -d -- "$1"',
               "file": 'compgen -d -- "$1"\n  compgen -f -X \'!*.toml\' -- "$1"'}


def add_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, help="the shell the script is for")


def run_completion(args: argparse.Namespace) -> int:
    from ..errors import MnistlabError
    from . import build_parser

    try:
        import shtab
    except ImportError:
        raise MnistlabError("completion needs shtab: pip install shtab (or reinstall "
                            "mnistlab, which depends on it)") from None
    # Settings flags take any text (TrainConfig checks it), so argparse knows no choices for
    # them; this parser only writes the script, so it is told the field's choices to offer.
    choices = {f.name: [c for c in f.metadata["choices"] if c]
               for f in dataclasses.fields(TrainConfig) if f.metadata.get("choices")}
    names = _names()
    parser = build_parser()
    for action in _actions(parser):
        offered, other = names.get(action.metavar) or names.get(action.dest) or ([], "")
        if offered and other:
            key = "".join(c for c in action.dest if c.isalnum())
            action.complete = _names_or_paths(key, offered, other)  # type: ignore[attr-defined]
        elif offered:
            action.choices = offered
        elif action.metavar in FOLDERS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.metavar in FILES:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.option_strings and action.choices is None and action.dest in choices:
            action.choices = choices[action.dest]
    # with its last newline: `>> ~/.bashrc` then another line ran the two together
    # ("complete ... mnistlabexport FOO=1"), as shtab's own command prints it
    print(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return 0


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every argument of `parser` and of its subcommands, all the way down."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
