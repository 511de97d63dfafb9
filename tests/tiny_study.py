"""A small real-data study (Fashion-MNIST subset, tiny MLP, 2 seeds): about ten seconds."""

from __future__ import annotations

from pathlib import Path

TINY = """

name = "tiny"
title = "tiny study"
seeds = 2
[base]
dataset = "fashion-mnist"
model = "mlp"
hidden = [32]
optimizer = "sgd"
lr = 0.05
schedule = "constant"
batch_size = 100
epochs = 3
train_subset = 2000
val_size = 1000
eval_train_size = 1000
device = "cpu"
[[experiment]]
name = "learning-rate"
factor = "lr"
values = [0.01, 0.05]
original = { "0.05" = { train = 70.0, val = 71.0 } }
[[experiment]]
name = "epochs"
factor = "epochs"
values = [1, 3]
[final]
choose = "best"
settings = { epochs = 2 }
"""


def write_tiny_study(path: Path, data_dir: Path) -> Path:
    """The tiny study as a TOML file at `path`, reading data from `data_dir`."""
    path.write_text(TINY.replace('device = "cpu"', f'device = "cpu"\ndata_dir = "{data_dir}"'))
    return path
