"""The real process: bad inputs of several kinds end `python -m mnistlab` with exit code 2 and
exactly one line on stderr, never a traceback (the in-process tests check the messages)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _train_huge_mlp(tmp_path, data):
    return ["train", "--quiet", "--dataset", str(data), "--val-size", "100", "--model", "mlp",
            "--hidden", "10000000", "--out", str(tmp_path / "run")]


def _study_with_a_billion_seeds(tmp_path, data):
    path = tmp_path / "study.toml"
    path.write_text(f'seeds = 1000000000\n[base]\ndataset = "{data}"\nmodel = "mlp"\n')
    return ["study", str(path), "--out", str(tmp_path / "study")]


def _doctor_on_a_damaged_summary(tmp_path, data):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"status": "completed", "loss_trace": "cut')
    return ["doctor", str(run)]


def _config_that_is_not_utf8(tmp_path, data):
    path = tmp_path / "settings.toml"
    path.write_bytes(b'model = "mlp"  # r\xe9sum\xe9\n')
    return ["train", "--config", str(path), "--out", str(tmp_path / "run")]


@pytest.mark.parametrize("make_argv,message", [
    (_train_huge_mlp, "above the limit of 100,000,000"),
    (_study_with_a_billion_seeds, "seeds must be a whole number from 1 to 1,000"),
    (_doctor_on_a_damaged_summary, "summary.json: damaged (not JSON"),
    (_config_that_is_not_utf8, "settings.toml: not UTF-8 text"),
])
def test_bad_input_is_exit_2_and_one_line_on_stderr(make_argv, message, tmp_path, tiny_idx_dir):
    result = subprocess.run([sys.executable, "-m", "mnistlab", *make_argv(tmp_path, tiny_idx_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.parametrize("json", [["--json"], []], ids=["print", "rich"])
def test_a_reader_that_stops_early_is_not_called_a_disk_error(tiny_idx_dir, json):
    """`mnistlab ... | head`: the closed pipe ends the command quietly, as SIGPIPE would
    (141), instead of 'free space or fix the permissions' and exit 1; rich's tables too
    (rich exited 1 itself)."""
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", "data", "info",
                                str(tiny_idx_dir), *json],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # no reader left: the first write fails
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == ""


def test_a_reader_of_the_progress_that_stops_early_does_not_stop_the_training(tiny_idx_dir,
                                                                               tmp_path):
    """`train ... 2>&1 | head -1`, a `tee` that died: rich exited 1 at the next progress line,
    and the run stopped mid-way without a word (hunt). The progress goes nowhere now, and the
    run trains to its end."""
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", "train", "--dataset",
                                str(tiny_idx_dir), "--model", "mlp", "--hidden", "8",
                                "--epochs", "4", "--val-size", "50", "--eval-train-size", "50",
                                "--out", str(tmp_path / "run")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process.stderr.readline()  # the first line, then no reader left
    process.stderr.close()
    assert process.wait(timeout=300) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 4


def test_a_file_where_a_folder_goes_is_named_as_such(tmp_path, tiny_idx_dir):
    """A file named like the folder mnistlab makes (tensorboard/ in the run folder): the
    advice was 'free space or fix the permissions', which fixes nothing. It is said before
    training now, as a mistake in the input (exit 2)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "tensorboard").write_text("")
    result = subprocess.run([sys.executable, "-m", "mnistlab", "train", "--quiet", "--dataset",
                             str(tiny_idx_dir), "--model", "mlp", "--val-size", "100",
                             "--log", "tensorboard", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert line == (f"error: {out / 'tensorboard'}: a file stands where --log tensorboard makes "
                    "its folder; move or rename it")
    assert sorted(p.name for p in out.iterdir()) == ["tensorboard"]  # nothing trained


@pytest.mark.parametrize("code,advice", [
    (errno.ENOSPC, "free space on that disk"), (errno.EROFS, "a disk that is not read-only"),
    (errno.EACCES, "fix its permissions"), (errno.EISDIR, "a folder stands where mnistlab "
                                                          "writes a file"),
    (errno.ENAMETOOLONG, "give a shorter path"), (errno.EIO, "free space or fix the permissions"),
    (errno.ELOOP, "leads back to itself: give a real folder"),
    (errno.ENOTDIR, "a file stands where the path needs a folder")])
def test_a_disk_error_says_what_to_do_about_that_error(code, advice, monkeypatch, capsys):
    from mnistlab import cli

    def fails(args):
        raise OSError(code, os.strerror(code), "runs/x/model.pt")

    help_text, description, add, _ = cli.COMMANDS["doctor"]
    monkeypatch.setitem(cli.COMMANDS, "doctor", (help_text, description, add, fails))
    of_the_path = code in (errno.ENAMETOOLONG, errno.ELOOP)  # the same command cannot work
    assert cli.main(["doctor", "runs/x"]) == (2 if of_the_path else 1)
    line, = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: runs/x/model.pt: ") and advice in line, line
    again = "then run the same command again (finished work is kept)"
    assert line.endswith(advice if of_the_path else again), line


def test_a_home_matplotlib_cannot_write_to_costs_no_advice(tmp_path):
    """A HOME that is a file (or read-only: containers, batch jobs) made matplotlib print two
    lines about MPLCONFIGDIR on every command that draws; its temporary folder goes at exit."""
    home = tmp_path / "home"
    home.write_text("")
    code = ("import glob, os, tempfile\n"
            "from mnistlab.cli import _matplotlib_config_where_it_can_be_written as setup\n"
            "setup()\n"
            "import matplotlib.pyplot\n"
            "print(os.environ['MPLCONFIGDIR'])\n")
    (tmp_path / "config").mkdir()  # settings can go here; the cache (~/.cache) cannot
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": "", "MPLCONFIGDIR": "", "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert not Path(done.stdout.strip()).exists()  # removed at exit
    env.pop("MPLCONFIGDIR")  # without the setup, the advice this test is about
    done = subprocess.run([sys.executable, "-c", "import matplotlib.pyplot"],
                          capture_output=True, text=True, env=env)
    assert "MPLCONFIGDIR" in done.stderr


def test_a_device_not_here_says_where_else_it_may_be_set(missing_device):
    """A study variant with device = "cuda" keeps it over --device: the advice to use
    --device auto alone did not help there."""
    from mnistlab.device import resolve_device
    from mnistlab.errors import MnistlabError

    with pytest.raises(MnistlabError, match=r"; use --device auto, or device = \"auto\" where "
                       r"a file sets it \(a study's variant keeps its own device\)$"):
        resolve_device(missing_device)
