"""What averaging trained networks buys: runs (single or `--ensemble`) mixed on the test set.

    MNISTLAB_DATA=../shared/datasets python benchmarks/ensemble_mix.py RUN_DIR [RUN_DIR ...]

Each network is scored once on the test set the way `--tta` scores it when its run used TTA
(the softmax averaged over the views); an ensemble run contributes each of its members. Printed:
each network's accuracy; for every team size k, the accuracy of the averaged softmax over all
teams of k networks (mean, min, max); the test images every network gets wrong and those at
least one gets wrong. Mixing independent runs with the members of a lockstep ensemble shows
whether members that share their batches (ensemble.py) lose anything by it.
Test only: the runs may hold out different validation sets, so there is nothing to choose by.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import torch
from _cli import run_main  # benchmarks/ is the script's folder, so on sys.path
from tta_views import parse_runs

from mnistlab.config import load_config
from mnistlab.data.tensors import prepare_data
from mnistlab.runs import load_model
from mnistlab.training.evaluation import scored_logits

MAX_TEAMS = 200  # teams scored per size at most (the first ones, in combination order)


@torch.no_grad()
def test_softmax(run: Path, batch: int = 2000) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({network name: (test images, classes) softmax}, test labels) for one run folder."""
    config = load_config(run / "config.toml")
    model, _ = load_model(run)
    model.eval()
    splits = prepare_data(config.replace(device="cpu"))
    forward = getattr(model, "member_logits", model)  # an ensemble: (members, B, K)
    out = torch.cat([scored_logits(forward, splits.test_x[i:i + batch], config, splits.mean,
                                   splits.std, config.tta).softmax(-1)
                     for i in range(0, len(splits.test_y), batch)], dim=-2)
    if out.dim() == 2:
        return {run.name: out}, splits.test_y
    return {f"{run.name}[{m}]": out[m] for m in range(len(out))}, splits.test_y


def accuracy(probs: list[torch.Tensor], labels: torch.Tensor) -> float:
    return float((sum(probs).argmax(-1) == labels).double().mean())


def main() -> None:
    args = parse_runs(__doc__.split("\n")[0])
    nets: dict[str, torch.Tensor] = {}
    labels = None
    for run in args.runs:
        found, run_labels = test_softmax(run)
        if labels is not None and not torch.equal(labels, run_labels):
            raise SystemExit(f"{run}: another test set than the runs before it")
        labels = run_labels
        nets |= found
    assert labels is not None
    for name, probs in nets.items():
        print(f"{name:40s} {accuracy([probs], labels):.4f}")
    names = list(nets)
    for k in range(2, len(names) + 1):
        teams = list(itertools.islice(itertools.combinations(names, k), MAX_TEAMS))
        scores = [accuracy([nets[n] for n in team], labels) for team in teams]
        print(f"teams of {k} ({len(teams)}): mean {statistics.mean(scores):.4f}, "
              f"min {min(scores):.4f}, max {max(scores):.4f}")
    wrong = [set((p.argmax(-1) != labels).nonzero().flatten().tolist()) for p in nets.values()]
    print(f"test images wrong: {min(map(len, wrong))}-{max(map(len, wrong))} per network, "
          f"{len(set.intersection(*wrong))} by every network, {len(set.union(*wrong))} by at "
          f"least one")


if __name__ == "__main__":
    run_main(main)
