"""Writing files safely: atomic writes, folder checks before work starts, and locks.

- Every file is written to a temporary name beside its target and renamed into place, so a
  process killed at any moment leaves the old file or the new one, never half of one; a full
  disk or a read-only folder surfaces as an `OSError` naming the file, never as a half-written
  file. Files get the permissions the user's umask gives (not mkstemp's private 0600), so a
  web server, TensorBoard or a colleague can read a report.
- Temporary names carry a mark (`TEMP_SUFFIX`), so cleaning up after a killed process deletes
  only temporaries mnistlab made, never a user's own `*.tmp` files.
- `check_output_folder` and `check_output_file` find a bad `--out` (an existing file, a
  read-only or full device) before hours of training, not after.
- `exclusive` is a cross-platform lock (filelock): a second process gets one line, not a race.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from .errors import MnistlabError, first_few

TEMP_SUFFIX = ".mnistlab.tmp"
PROBE_NAME = ".mnistlab-write-probe"


def read_only_sqlite(path: Path) -> contextlib.closing:
    """An SQLite file opened read-only, closed after the `with`: a study's store, a search's
    tune.db or an MLflow store looked into without writing to it (nor making it, if gone)."""
    import sqlite3

    return contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc), else by
    setting and restoring it (racy only against another thread doing the same)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A file name's most bytes on the file systems we meet (ext4, XFS, APFS, NTFS in UTF-16 units)
NAME_MAX = 255


def _temp_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file beside `path`, named after it, cut short where `path`'s name is
    long: "." + name + 8 random characters + TEMP_SUFFIX made a name of 230 bytes too long, so
    a valid one failed, naming the temporary. A failure names `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    room = NAME_MAX - len(".") - len(".") - 8 - len(TEMP_SUFFIX)
    stem = path.name
    while len(os.fsencode(stem)) > room:  # whole characters: a cut "é" is not UTF-8 (macOS
        stem = stem[:-1]  # refuses such names); a byte of a non-UTF-8 name is one character
    try:
        fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return fd, Path(name)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically, with the permissions the umask gives new files.
    A failed write (a full disk) raises OSError naming `path`. Flushed to the disk before it
    replaces `path`, so that a power cut leaves the old file or the new one (an epoch
    checkpoint too: unflushed, one could be left empty, and its run refused until deleted)."""
    try:
        with replacing(path) as tmp, open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write (or copy) the new file into; renamed over `path`
    when the block ends normally, removed when it raises."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp made it private (0600)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # `path` is a folder, say: name it, not the temporary
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- SQLite files as database URLs ----------------------------------------------------------
# Characters a URL reads as its own: "?" starts the query, "#" the fragment, "%" an escape.
# Written into the URL as is, `--out "tunes/lr?a"` put tune.db in a file `tunes/lr` that
# another search's `tunes/lr?b` then shared. Escaped, the database's path is read back whole
# (SQLAlchemy unquotes it); other characters (spaces, accents) stay as they were written.
_URL_ESCAPES = {"%": "%25", "?": "%3F", "#": "%23"}


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of the SQLite file at `path` (made absolute)."""
    text = str(Path(path).resolve())
    return "sqlite:///" + "".join(_URL_ESCAPES.get(c, c) for c in text)


def sqlite_path(url: str) -> Path | None:
    """The file an `sqlite:///` URL names (its query left out, its escapes read), or None for
    another kind of URL."""
    from urllib.parse import unquote

    if not url.startswith("sqlite:///"):
        return None
    return Path(unquote(url.removeprefix("sqlite:///").split("?")[0]))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_document(path: str | Path, text: str) -> None:
    """A document for people to read (a report): a path in it whose name is not UTF-8 (a
    byte such as 0xff, which Python holds as a lone surrogate) is written as the escape
    backslash-x-f-f, as a terminal shows it, where write_text raised UnicodeEncodeError and
    no report was ever written."""
    write_bytes(path, text.encode("utf-8", "surrogateescape")
                .decode("utf-8", "backslashreplace").encode("utf-8"))


def json_text(data: Any, **options: Any) -> str:
    """JSON as the standard has it: a NaN or infinity (not measured, or a loss that diverged)
    is written as null, which every JSON reader takes; Python's own NaN token is not JSON. A
    file name's bytes that are not UTF-8 (Python holds them as lone surrogates) are written as
    \\udcXX escapes: as raw bytes the output was not UTF-8, nor JSON."""
    text = json.dumps(_finite(data), allow_nan=False, **options)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(data: Any) -> Any:
    if getattr(data, "shape", None) == () and hasattr(data, "item"):
        data = data.item()  # a NumPy or torch scalar (np.float32 is no float): as Python's
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(value) for value in data]
    return data


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json_text(data, indent=2, ensure_ascii=False) + "\n")


def torch_save(path: str | Path, obj: Any) -> None:
    """torch.save into memory, then an atomic write: on a full disk torch's own file writer
    fails with "unexpected pos" errors; this way the error is the disk's, naming the file."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def save_figure(path: str | Path, figure: Any, *, lang: str | None = None) -> None:
    """Save a matplotlib figure atomically (PNG). Its layout is its own (constrained): drawn
    once, where bbox_inches="tight" drew it twice. `lang`: the language of its words, kept in
    the PNG (figure_language reads it back)."""
    from .held import font_search_quiet, math_text_off

    buffer = io.BytesIO()
    missing: dict[str, str] = {}
    with _SAVING, math_text_off(), font_search_quiet(), _glyphs_gathered(missing):
        figure.savefig(buffer, format="png", dpi=110,  # a "$" in a label drawn now (a
                       metadata={"Language": lang} if lang else None)  # tick's) is text too
    _say_missing_glyphs(missing)
    write_bytes(path, buffer.getvalue())


# one save at a time: the way warnings are shown is the process's (review: threads saving at
# once left warnings off for good); a save inside a save (a draw callback's) is let through
_SAVING = threading.RLock()
_GLYPH = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.+?)\.?$")
_GLYPHS_SAID: set[str] = set()


@contextlib.contextmanager
def _glyphs_gathered(missing: dict[str, str]) -> Iterator[None]:
    """matplotlib's warnings of a character its font lacks (a class named in Chinese: a line
    per character, on every figure) gathered into `missing` as they are shown, not shown;
    every other warning shown as the process's filters say (the warnings' filters are not
    touched: catch_warnings reset their memory of what was said, and matplotlib's own
    warnings came on every figure; review)."""
    shown = warnings.showwarning

    def gather(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
               line: Any = None) -> None:
        found = _GLYPH.match(str(message))
        if found is None:
            shown(message, category, filename, lineno, file, line)
        elif chr(int(found.group(1))) not in _GLYPHS_SAID:  # once a process: what drawing
            missing[chr(int(found.group(1)))] = found.group(2)  # does inside may reset
            # Python's memory of what it said

    warnings.showwarning = gather
    try:
        yield
    finally:
        warnings.showwarning = shown


def _say_missing_glyphs(missing: dict[str, str]) -> None:
    """The characters the figures' fonts lack, said in one line (each is shown once a
    process, as Python shows a warning once where it is raised)."""
    if missing:
        _GLYPHS_SAID.update(missing)
        listed = "".join(list(missing)[:12]) + ("…" if len(missing) > 12 else "")
        warnings.warn(f"figures: the font ({next(iter(missing.values()))}) has no {listed}: "
                      "drawn as empty boxes; install a font that has them (Noto Sans CJK "
                      "for Chinese, Japanese and Korean, say), which the figures then use",
                      stacklevel=3)


def figure_language(path: str | Path) -> str | None:
    """The language save_figure kept in a PNG; None where it kept none (drawn before it did)
    or the file cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("Language")
    except (OSError, ValueError):
        return None


def remove_stale_temps(folder: str | Path) -> int:
    """Delete temporaries a killed mnistlab process left under `folder` (only files carrying
    mnistlab's mark; never the targets, never anyone else's files). Call only while no other
    process writes into `folder` (the caller holds its lock)."""
    removed = 0
    for path in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# --- checks before work starts ---------------------------------------------------------------
# a tune worker's folder on a shared storage (PostgreSQL) holds no tune.db; search.json alone
# may be anyone's (a site's search index)
SEARCH_FILES = ("search.json", "space.toml")
# Files that together mark one of mnistlab's own folders, and which kind (named when given as
# another): a config.toml or a model.pt alone may be the user's own, kept beside their notes
FOLDER_MARKS = {("study.db",): ("study", "mnistlab study"), ("tune.db",): ("tune", "mnistlab tune"),
                SEARCH_FILES: ("tune", "mnistlab tune"),
                # a run's summary beside its epochs (a summary.json alone may be anyone's: a
                # project folder holding one refused every export and --show below it)
                ("summary.json", "metrics.csv"): ("run", "mnistlab train"),
                ("model.pt", "config.toml"): ("run", "mnistlab train"),
                ("checkpoint.pt", "config.toml"): ("run", "mnistlab train")}


def marked(folder: Path, names: tuple[str, ...]) -> bool:
    """Whether `folder` holds every file of `names` (a FOLDER_MARKS key)."""
    return all((folder / name).is_file() for name in names)


def _mark_of(folder: Path) -> tuple[str, str] | None:
    """Which of mnistlab's folders `folder` is (FOLDER_MARKS: kind, the command that makes
    it), or None."""
    return next((mark for names, mark in FOLDER_MARKS.items() if marked(folder, names)), None)


def _ours_above(folder: Path) -> Iterator[tuple[Path, tuple[str, str]]]:
    """Each folder of mnistlab's that `folder` lies in, nearest first, with its mark.
    Resolved first: `runs/a/../b` is beside runs/a, not in it."""
    for parent in Path(folder).expanduser().resolve().parents:
        mark = _mark_of(parent)
        if mark is not None:
            yield parent, mark


def owner_of(folder: Path) -> tuple[Path, str, str] | None:
    """The study or search folder `folder` lies in (the folder, its kind, the command that
    makes it), or None: a run folder of its own, or no folder of ours."""
    return next(((parent, *mark) for parent, mark in _ours_above(folder) if mark[0] != "run"),
                None)


def check_not_inside_ours(folder: Path, flag: str = "--out", *, file: bool = False) -> None:
    """A folder given for new work is not inside a run, study or search folder of mnistlab's:
    the work went in, and that folder was then refused as holding "files mnistlab did not
    write". (A study's and a search's own runs are inside them by design, and not given.)"""
    for parent, mark in _ours_above(folder):
        where = "write it outside that folder" if file else "give a folder outside it"
        raise MnistlabError(f"{flag} {folder}: inside the {mark[0]} folder {parent} (made "
                            f"by `{mark[1]}`), which holds only its own files; {where}")


# Where mnistlab names a folder itself (a study's runs/<key>, a search's retrain/<name>), a
# file in its place is not a wrong --out: the user gave none
FILE_IN_OUR_PLACE = "a file stands where mnistlab makes a folder: move or rename it"


def _not_a_folder(folder: Path, flag: str) -> MnistlabError:
    if not flag:  # a folder mnistlab names itself
        return MnistlabError(f"{folder}: {FILE_IN_OUR_PLACE}")
    return MnistlabError(f"{flag} {folder}: exists and is not a folder; give a folder path")


# What a file browser or a notebook leaves in any folder it shows (Finder, Explorer,
# JupyterLab opening metrics.csv): not the user's files. A finished run with one was refused
# as "holding files mnistlab did not write" (hunt)
LITTER = frozenset({".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "desktop.ini"})


def not_litter(folder: Path) -> set[str]:
    """The names in `folder` but LITTER, and macOS's AppleDouble copies (`._metrics.csv`) on
    drives that keep no extended attributes (exFAT, SMB)."""
    return {p.name for p in folder.iterdir()
            if p.name not in LITTER and not p.name.startswith("._")}


def check_owned_folder(folder: Path, owned: set[str], kind: str, flag: str = "--out") -> None:
    """Refuse, before anything is written, a `folder` that holds anything but what a `kind`
    folder holds (`owned` names, and mnistlab's temporaries): mnistlab only writes and deletes
    its own files, so it never works in a folder that is someone else's. `flag` "": a folder
    mnistlab names itself."""
    if folder.exists() and not folder.is_dir():
        raise _not_a_folder(folder, flag)
    if not folder.is_dir():
        return
    foreign = sorted(name for name in not_litter(folder)
                     if name not in owned and name != PROBE_NAME
                     and not name.endswith(TEMP_SUFFIX))
    if foreign:
        other = _mark_of(folder)
        if other is not None and other[0] != kind:  # the wrong folder of ours: say which
            raise MnistlabError(f"{flag} {folder}: is a {other[0]} folder (made by "
                                f"`{other[1]}`), not a {kind} folder; give a new or empty "
                                "folder")
        foreign.sort(key=lambda name: name.startswith("."))  # the user's own names first
        shown = first_few(foreign)
        if other is not None:  # ours, with files added (an export, notes): theirs to move
            raise MnistlabError(f"{flag} {folder}: a {kind} folder holding files mnistlab did "
                                f"not write ({shown}); move them out of it, or give another "
                                "folder")
        raise MnistlabError(f"{flag} {folder}: not empty and not a {kind} folder (it holds "
                            f"{shown}); give a new or empty folder")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output_folder(folder: str | Path, flag: str = "--out", *,
                        needs_bytes: int = 0) -> Path:
    """Make sure `folder` is (or can become) a folder this process can write `needs_bytes`
    into: create it, write and remove a probe file. One line naming `flag` otherwise (""
    for a folder mnistlab names itself: a file in its place is said to be one)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise _not_a_folder(folder, flag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        link = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()),
                    None)  # mkdir said "File exists" of a link to nowhere
        if not flag and link is None and exc.errno in (errno.ENOTDIR, errno.EEXIST):
            file = next((p for p in folder.parents if p.exists() and not p.is_dir()), folder)
            raise MnistlabError(f"{file}: {FILE_IN_OUR_PLACE}") from None  # a parent is a file
        if link is not None:
            raise MnistlabError(f"{(flag + ' ') if flag else ''}{folder}: {link} is a symbolic "
                                f"link to {os.readlink(link)}, which is not there (or leads "
                                "back to itself); make that folder, or give another") from None
        raise MnistlabError(f"{(flag + ' ') if flag else ''}{folder}: cannot create the folder "
                            f"({_why(exc)}); choose a place you can write to") from None
    probe = folder / PROBE_NAME
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        why = "no file can be made in it" if exc.errno == errno.ENOENT else _why(exc)  # /proc
        raise MnistlabError(f"{flag} {folder}: cannot write there ({why}); " + (
            "free space on its device, or choose another folder" if full else
            "choose a folder you can write to")) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    free = shutil.disk_usage(folder).free
    if needs_bytes and free < needs_bytes:
        raise MnistlabError(f"{flag} {folder}: only {size_text(free)} free on its device, and this "
                            f"needs about {size_text(needs_bytes)}; free some space or choose "
                            "another folder")
    return folder


def check_output_file(path: str | Path, flag: str = "--out", *, suffix: str,
                      replace: bool = True) -> Path:
    """A file about to be written: named as the `suffix` kind of file it is, not a folder,
    and its folder writable (see above); with `replace` False, not there yet."""
    # "x.png/" names a folder (Path drops the slash, and x.png was written)
    folder = isinstance(path, str) and path.endswith(("/", os.sep))
    path = Path(path)
    if path.is_dir() or folder:
        what = "is a folder" if path.is_dir() else f"names a folder (it ends in {os.sep})"
        raise MnistlabError(f"{flag} {path}{os.sep if folder else ''}: {what}; give the file "
                            f"to write, e.g. {path / ('out' + suffix)}")
    if not replace and path.exists():
        raise MnistlabError(f"{flag} {path}: the file exists and would be replaced; give "
                            "another name, or add --overwrite (overwrite=True from Python) to "
                            "replace it")
    if not path.name.lower().endswith(suffix):  # Path('.onnx').suffix is '': a hidden file
        raise MnistlabError(f"{flag} {path}: what is written is {suffix[1:].upper()}; give a "
                            f"name ending in {suffix}")
    # an ONNX file or a sheet put in a run's folder made the run's own command refuse it
    # later, as a folder "holding files mnistlab did not write"
    check_not_inside_ours(path, flag, file=True)
    check_output_folder(path.parent if str(path.parent) else Path("."), flag)
    return path


def size_text(n: float) -> str:
    """A number of bytes as a reader reads it: 512 bytes, 6.8 MB, 80.0 GB, 156,960 TB."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:,.0f} TB"  # a batch of 10**13 images: "about 1275200000000000.0 GB"


# --- locks -----------------------------------------------------------------------------------
HELD_FOR_A_TEST = 0.5  # seconds a lock may be busy with another process's `held` test


def held(lock_path: str | Path) -> bool:
    """Whether another process holds the lock at `lock_path` now (a lock file left behind by
    a finished or killed process is not held: the operating system let it go)."""
    from filelock import FileLock, Timeout

    if not Path(lock_path).is_file():
        return False
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # a lock we may not open: not ours to judge
        return False
    lock.release()
    return False


@contextlib.contextmanager
def exclusive(lock_path: str | Path, what: str, *, wait: bool = False,
              waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (any platform). A second holder gets a one-line
    error, or with `wait` waits its turn, calling `waiting` first (a wait can last minutes:
    another worker retraining, a slow remote storage; silence looked like a hang)."""
    from filelock import FileLock, Timeout

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # not 0: `held` (the doctor, a refused train's clean-up) takes a free lock for an instant
    # to test it, and a command starting in that instant was refused
    lock = FileLock(lock_path, timeout=HELD_FOR_A_TEST)
    try:
        lock.acquire()
    except Timeout:
        if not wait:
            raise MnistlabError(f"{lock_path.parent}: another process is running {what} in "
                                "this folder; wait for it or use another --out") from None
        if waiting is not None:
            waiting()
        lock.acquire(timeout=-1)
    try:
        yield
    finally:
        lock.release()


class StderrConsole(Console):
    """rich's Console on standard error, where a closed pipe (`train ... 2>&1 | head -1`, a
    `tee` that died) silences it and the work goes on: rich's own exits 1 at the next line,
    and a training stopped there mid-run without a word (hunt). What is left to say goes
    nowhere; standard output, the results, is another matter (the CLI's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(stderr=True, **kwargs)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):  # later writes, warnings' too, vanish
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
