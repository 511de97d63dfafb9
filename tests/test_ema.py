"""--ema: the moving average of the weights is what each epoch scores, what model.pt holds and
what a resumed run continues; batch-norm statistics are averaged with it; cohorts refuse it."""

import pytest
import torch
from synth import blobs
from torch import nn

from mnistlab import TrainConfig, train
from mnistlab.data.tensors import prepare_data
from mnistlab.errors import MnistlabError
from mnistlab.training import Hook, cohort, evaluate
from mnistlab.training.ema import WeightAverage

# a small conv net with batch norm, so running statistics are in play
CONV = dict(model="cnn", filters=(4, 8), dense=(16,), batchnorm=True, val_size=200,
            eval_train_size=200, batch_size=50, epochs=2, seed=0, device="cpu", ema=0.9)


def test_the_average_warms_up_then_follows_the_decay_and_averages_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    average = WeightAverage(model, 0.9)
    start = [t.clone() for t in average.module.state_dict().values()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()
    model(torch.randn(8, 3) * 5 + 3)  # moves the running mean and variance
    average.update()
    decay = 2 / 11  # update 1: min(0.9, (1 + 1) / (10 + 1))
    assert average.current_decay() == pytest.approx(decay)  # the one the last update used
    for (name, now), before, target in zip(average.module.state_dict().items(), start,
                                           model.state_dict().values()):
        if name.endswith("num_batches_tracked"):
            assert now == target  # integers are copied
        else:
            assert torch.allclose(now, decay * before + (1 - decay) * target), name
    for _ in range(1000):
        average.update()
    assert average.current_decay() == 0.9
    assert not any(p.requires_grad for p in average.module.parameters())


def test_the_average_is_scored_each_epoch_and_saved_in_model_pt(tmp_path):
    seen = {}

    class Look(Hook):
        def on_epoch_end(self, run):
            learner, splits = run.learner, run.splits
            scored = evaluate(learner.average.module, splits.val_x, splits.val_y,
                              learner.configs[0], splits.mean, splits.std, 10)
            seen.setdefault("val", []).append(scored.accuracy)

        def on_run_end(self, run):
            seen["raw"] = {k: v.clone() for k, v in run.learner.model.state_dict().items()}
            seen["average"] = {k: v.clone()
                               for k, v in run.learner.member_model(0).state_dict().items()}

    result = train(TrainConfig(**CONV), dataset=blobs(), out=tmp_path / "run", hooks=[Look()])
    assert [r.val_accuracy for r in result.history] == seen["val"]
    differ = [k for k in seen["raw"] if not torch.equal(seen["raw"][k], seen["average"][k])]
    assert any("running_mean" in k for k in differ) and any("weight" in k for k in differ)
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], seen["average"][k]) for k in saved)
    assert result.summary.val_accuracy > 0.5
    # the average is what the run keeps, and it counts as many weights as the network
    assert result.summary.parameters == sum(v.numel() for k, v in seen["raw"].items()
                                            if "running" not in k and "num_batches" not in k)


def test_a_resumed_run_continues_its_average_exactly(tmp_path):
    config = TrainConfig(**{**CONV, "epochs": 3})
    full = train(config, dataset=blobs())

    class CrashInEpoch2(Hook):
        def on_epoch_end(self, run):
            if run.histories[0][-1].epoch == 2:
                raise RuntimeError("the machine went down")

    with pytest.raises(RuntimeError):
        train(config, dataset=blobs(), out=tmp_path / "r", hooks=[CrashInEpoch2()])
    resumed = train(config, dataset=blobs(), out=tmp_path / "r")
    assert [r.replace(seconds=0) for r in full.history] == [
        r.replace(seconds=0) for r in resumed.history]


def test_cohorts_never_group_an_averaged_run_and_refuse_one_in_one_line():
    base = TrainConfig(model="mlp", hidden=(16,), schedule="constant", val_size=100,
                       eval_train_size=100, batch_size=50, epochs=1, device="cpu")
    configs = [base, base.replace(seed=1), base.replace(ema=0.99),
               base.replace(ema=0.99, seed=1)]
    assert cohort.cohort_key(configs[2]) is None
    assert sorted(map(sorted, cohort.group(configs, torch.device("cpu")))) == [[0, 1], [2], [3]]
    splits = prepare_data(base, blobs(n_train=300, n_test=100), torch.device("cpu"))
    with pytest.raises(MnistlabError) as info:
        cohort.train_cohort(configs[2:], splits=splits, outs=[None] * 2, tests=[False] * 2)
    assert "--ema" in str(info.value) and "\n" not in str(info.value)
