"""Build docs/doctor.md: each failure signature, the command that reproduces it, and what the
doctor prints for it. Every entry is trained for real on a subset of the shared data:

    MNISTLAB_DATA=../shared/datasets python docs/gallery.py      # ~2 minutes on 2 cores
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import warnings
from pathlib import Path

import torch

from mnistlab import TrainConfig, load_dataset, train
from mnistlab.files import write_text

SETTINGS = {f.name for f in dataclasses.fields(TrainConfig)}  # the flags of `mnistlab train`

SMALL = {"train_subset": 5000, "val_size": 2000, "eval_train_size": 2000, "epochs": 3}

# (code, title, flags) — flags are exactly what a user types after `mnistlab train`
CASES = [
    ("binary-accuracy-illusion", "The 0.9000 / 0.3251 plateau of the LeNet challenge",
     "--dataset mnist --model lenet5 --loss bce --metric binary-accuracy --shuffle-labels"),
    ("not-learning", "Loss stuck at ln 10 = 2.3026",
     "--dataset mnist --model mlp --hidden 64,64,64,64,64,64 --activation sigmoid "
     "--optimizer sgd --lr 0.01 --schedule constant"),
    ("collapse", "Everything predicted as one class", None),
    ("softmax-twice", "Loss floor at 1.4612",
     "--dataset mnist --model mlp --loss ce-on-softmax --epochs 8 --lr 0.003"),
    ("diverged", "NaN or an exploding loss",
     "--dataset mnist --model lenet5 --optimizer sgd --lr 50"),
    ("too-slow", "Plain SGD at lr 0.0001 (the original study's first row)",
     "--dataset fashion-mnist --model mlp --optimizer sgd --lr 0.0001 --batch-size 100 "
     "--schedule constant"),
    ("unnormalised-input", "Pixels fed in 0..255",
     "--dataset mnist --model mlp --input-scaling raw"),
    ("overfitting", "Training keeps improving, validation gets worse",
     "--dataset fashion-mnist --model mlp --hidden 512,256 --train-subset 1000 --epochs 25 "
     "--batch-size 50 --schedule constant"),
    ("val-above-train", "'Validation beats training' (the Fashion study's reading)",
     "--dataset fashion-mnist --model mlp --dropout 0.6 --optimizer sgd --lr 0.01 "
     "--schedule constant"),
    ("wrong-dataset", "Fashion-MNIST offered as MNIST", None),
    ("no-signal", "Labels that carry no information",
     "--dataset mnist --model mlp --hidden 32 --shuffle-labels --epochs 4"),
    ("held-back", "Dropout 0.9 where 0.1 was meant (a rate to drop, not to keep)",
     "--dataset mnist --model mlp --dropout 0.9"),
    ("overshot", "Adam at lr 0.09: a spike of the loss, never NaN",
     "--dataset mnist --model mlp --optimizer adam --lr 0.09"),
    ("few-steps", "A batch of 2,500: four steps in two epochs",
     "--dataset mnist --model mlp --batch-size 2500 --epochs 2"),
    ("members-at-chance", "An ensemble with a member that learned nothing",
     "--dataset mnist --model mlp --hidden 32 --ensemble 3 --optimizer sgd --momentum 0.9 "
     "--lr 0.7"),
]


def config_from_flags(flags: str) -> TrainConfig:
    values: dict = dict(SMALL)
    tokens = shlex.split(flags)
    i = 0
    while i < len(tokens):
        key = tokens[i][2:].replace("-", "_")
        if key not in SETTINGS:
            raise SystemExit(f"unknown flag {tokens[i]}")
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            values[key] = tokens[i + 1]
            i += 2
        else:
            values[key] = True
            i += 1
    return TrainConfig.from_dict(values, typed=False)  # flags are text, as the CLI reads them


def render(code: str, title: str, command: str, findings: list[dict]) -> str:
    fence = "python" if command.startswith("# Python") else "sh"  # highlighted as it reads
    lines = [f"## `{code}` — {title}", "", f"```{fence}", command, "```", ""]
    if not findings:
        return "\n".join(lines + ["(no finding: the case did not trigger)", ""])
    lines.append("What the doctor prints:")
    lines.append("")
    for f in findings:
        lines.append(f"- **{f['severity'].upper()} {f['title']}** (`{f['code']}`): "
                     f"{f['evidence']}. {f['explanation']} *Fix:* {f['fix']}")
    return "\n".join(lines + [""])


def entry(code: str, title: str, flags: str | None) -> tuple[str | None, str]:
    """Train one case for real and tell it: the first finding's code, and its section."""
    if code == "collapse":
        ds = load_dataset("mnist")
        ds.train_labels = torch.zeros_like(ds.train_labels)  # a label file read as zeros
        config = TrainConfig.from_dict({**SMALL, "model": "mlp", "val_from": "test"})
        result = train(config, dataset=ds)
        small = ", ".join(f"{k}={v}" for k, v in SMALL.items())
        command = ("# Python: a label column read as all zeros, validated on the real "
                   "test labels\nimport mnistlab\nfrom mnistlab import TrainConfig\n"
                   "ds = mnistlab.load_dataset('mnist'); ds.train_labels[:] = 0\n"
                   f"result = mnistlab.train(TrainConfig(model='mlp', val_from='test', "
                   f"{small}), dataset=ds)\nprint(result.summary.diagnoses[0].text()['title'])")
    elif code == "wrong-dataset":
        fashion = load_dataset("fashion-mnist")
        fashion.name = "mnist"  # what a swapped folder looks like once loaded
        config = TrainConfig.from_dict({"model": "mlp", "epochs": 1, "val_size": 2000,
                                        "eval_train_size": 2000})
        result = train(config, dataset=fashion)
        command = ("mnistlab data fetch mnist --from path/to/fashion-mnist\n"
                   "# error: path/to/fashion-mnist/train-images-idx3-ubyte.gz: these files "
                   "are Fashion-MNIST,\n#   not MNIST: they are read as --dataset "
                   "fashion-mnist, from a folder named fashion-mnist (…)\n"
                   "# and for a folder that passes the checksum step, the class histogram:")
    else:
        config = config_from_flags(flags)
        result = train(config)
        extra = {f"--{k.replace('_', '-')}": v for k, v in SMALL.items()}
        command = "mnistlab train " + flags + "".join(
            f" {flag} {v}" for flag, v in extra.items() if flag not in flags)
    found = [f.to_dict() for f in result.summary.diagnoses]
    return (found[0]["code"] if found else None), render(code, title, command, found)


def main() -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    warnings.simplefilter("ignore")
    small_flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in SMALL.items())
    parts = ["# The doctor's gallery", "",
             "Each failure signature, the command that reproduces it (the options marked as "
             "teaching aids exist for exactly this), and what `mnistlab doctor RUN_DIR` prints. "
             f"Generated by `python docs/gallery.py`; every case ran with `{small_flags}` "
             "unless its command says otherwise.", ""]
    for code, title, flags in CASES:
        first, text = entry(code, title, flags)
        status = "ok" if first == code else f"FIRST FINDING IS {first}"
        print(f"{code:26} {status}", file=sys.stderr)
        parts.append(text)
    write_text(Path(__file__).with_name("doctor.md"), "\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
