"""Cohorts: many MLPs in lockstep must train like the same MLPs one by one."""

import math

import pytest
import torch
from synth import blobs

from mnistlab.config import TrainConfig
from mnistlab.data.tensors import prepare_data
from mnistlab.errors import MnistlabError
from mnistlab.models import build_model
from mnistlab.training import cohort, train

BASE = dict(model="mlp", hidden=(32, 16), optimizer="sgd", lr=0.05, schedule="constant",
            batch_size=50, epochs=3, val_size=200, eval_train_size=200, device="cpu")


def cfg(**changes) -> TrainConfig:
    return TrainConfig(**{**BASE, **changes})


def _members(configs):
    out = []
    for c in configs:
        torch.manual_seed(c.seed)
        out.append(build_model(c, (1, 28, 28), 10))
    return out


def test_stacked_forward_equals_each_member():
    configs = [cfg(seed=s, dropout=d) for s, d in ((0, 0.0), (1, 0.3), (2, 0.0))]
    members = _members(configs)
    stacked = cohort.StackedMLP(members, "relu", [c.dropout for c in configs]).eval()
    x = torch.randn(7, 1, 28, 28)
    logits = stacked(x)
    for m, member in enumerate(members):
        torch.testing.assert_close(logits[m], member.eval()(x), rtol=1e-5, atol=1e-5)
        copy = stacked.write_member(m, build_model(configs[m], (1, 28, 28), 10))
        for a, b in zip(copy.state_dict().values(), member.state_dict().values()):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("settings", [
    dict(optimizer="sgd", lrs=(0.1, 0.01), momentum=(0.0, 0.9), weight_decay=(0.0, 0.01)),
    dict(optimizer="sgd", lrs=(0.1, 0.02), momentum=(0.9, 0.5), weight_decay=(0.001, 0.0),
         nesterov=True),
    dict(optimizer="adam", lrs=(0.001, 0.01), weight_decay=(0.0, 0.01)),
    dict(optimizer="adamw", lrs=(0.003, 0.001), weight_decay=(0.05, 0.0)),
])
def test_stacked_optimizer_matches_torch_optim(settings):
    """Five steps of the fused update equal torch.optim's, member by member."""
    kind, lrs = settings["optimizer"], settings["lrs"]
    momentum = settings.get("momentum", (0.0, 0.0))
    decay = settings["weight_decay"]
    configs = [cfg(optimizer=kind, seed=i, lr=lrs[i],
                           momentum=momentum[i], weight_decay=decay[i],
                           nesterov=settings.get("nesterov", False)) for i in range(2)]
    members = _members(configs)
    stacked = cohort.StackedMLP(members, "relu", [0.0, 0.0])
    fused = cohort.StackedOptimizer(stacked, kind, list(lrs), list(momentum), list(decay),
                                    settings.get("nesterov", False))
    torch_opts = []
    for c, member in zip(configs, members):
        if kind == "sgd":
            torch_opts.append(torch.optim.SGD(member.parameters(), lr=c.lr, momentum=c.momentum,
                                              nesterov=c.nesterov, weight_decay=c.weight_decay))
        elif kind == "adam":
            torch_opts.append(torch.optim.Adam(member.parameters(), lr=c.lr,
                                               weight_decay=c.weight_decay))
        else:
            torch_opts.append(torch.optim.AdamW(member.parameters(), lr=c.lr,
                                                weight_decay=c.weight_decay))
    g = torch.Generator().manual_seed(0)
    alive = torch.ones(2, dtype=torch.bool)
    for _ in range(5):
        x, y = torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)
        stacked.zero_grad()
        cohort._member_losses(stacked(x), y, 0.0).sum().backward()
        fused.step(1.0, alive)
        for member, opt in zip(members, torch_opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(member(x), y).backward()
            opt.step()
    for m, member in enumerate(members):
        copy = stacked.write_member(m, build_model(configs[m], (1, 28, 28), 10))
        for a, b in zip(copy.state_dict().values(), member.state_dict().values()):
            if kind == "sgd":
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
            else:
                _assert_adam_close(a, b, lrs[m], steps=5)


def _assert_adam_close(a: torch.Tensor, b: torch.Tensor, lr: float, steps: int) -> None:
    """Adam divides each gradient by its own running size, so where a gradient is next to
    zero the rounding of another matmul kernel (the cohort's batched multiply against one
    member's) can turn that weight's step around: seen on an AMX Xeon for 1 weight of 25,088.
    Such a weight still moves at most lr a step; all but a few must agree to 1e-4."""
    close = torch.isclose(a, b, rtol=1e-4, atol=1e-6)
    assert (~close).sum() <= max(1, a.numel() // 1000), f"{int((~close).sum())} weights differ"
    assert (a - b).abs().max() <= 2 * lr * steps


def test_cohort_trains_like_one_by_one():
    """Same seeds, same batches, and on a CPU each member's dropout masks drawn as its run alone
    draws them: the numbers agree to float noise, dropout or not. (The masks came from one
    stream for the cohort: a member's numbers depended on which runs shared its cohort, and
    were its twin's only within seed noise.)"""
    data = blobs(n_train=1200, n_test=300)
    configs = [cfg(seed=0), cfg(seed=1, lr=0.02),
               cfg(seed=2, lr=0.1, dropout=0.3, momentum=0.5),
               cfg(seed=3, weight_decay=0.01), cfg(seed=4, dropout=0.5)]
    splits = prepare_data(configs[0], data, torch.device("cpu"))
    together = cohort.train_cohort(configs, splits=splits, outs=[None] * 5, tests=[True] * 5)
    other = cohort.train_cohort(configs[2:3] + configs[:1], splits=splits, outs=[None] * 2,
                                tests=[True] * 2)  # other mates, in another place
    assert [r.val_loss for r in other[0].history] == pytest.approx(
        [r.val_loss for r in together[2].history], rel=1e-4)
    for config, result in zip(configs, together):
        alone = train(config, splits=splits)
        assert [r.val_loss for r in result.history] == pytest.approx(
            [r.val_loss for r in alone.history], rel=1e-4), config
        tolerance = 0.005
        ours, theirs = result.summary, alone.summary
        assert ours.status == theirs.status == "completed"
        assert abs(ours.val_accuracy - theirs.val_accuracy) <= tolerance, config
        assert abs(ours.test_accuracy - theirs.test_accuracy) <= tolerance, config
        assert len(result.history) == config.epochs
        assert ours.val_accuracy > 0.7  # learnt (chance is 0.1): the comparison means something


def test_a_diverging_member_does_not_spoil_the_others():
    data = blobs(n_train=1200, n_test=300)
    configs = [cfg(seed=0), cfg(seed=1, lr=500.0),
               cfg(seed=2)]
    splits = prepare_data(configs[0], data, torch.device("cpu"))
    results = cohort.train_cohort(configs, splits=splits, outs=[None] * 3, tests=[False] * 3)
    assert [r.summary.status for r in results] == ["completed", "diverged", "completed"]
    assert results[0].summary.val_accuracy > 0.9 and results[2].summary.val_accuracy > 0.9
    assert all(math.isfinite(v) for r in (results[0], results[2])
               for rec in r.history for v in rec.to_row().values())


def test_grouping_keeps_what_must_be_shared_apart():
    base = cfg()
    configs = [base, base.replace(lr=0.1, seed=1), base.replace(batch_size=32),
               base.replace(model="lenet5"), base.replace(dropout=0.5),
               base.replace(hidden=(64, 32)), base.replace(optimizer="adam"),
               base.replace(loss="bce")]
    groups = cohort.group(configs, torch.device("cpu"))
    assert sorted(map(sorted, groups)) == [[0, 1, 4], [2], [3], [5], [6], [7]]


def test_chunks_are_stable_when_finished_chunks_leave(monkeypatch):
    monkeypatch.setattr(cohort, "max_members", lambda *a, **k: 3)
    configs = [cfg(seed=s) for s in range(8)]
    groups = cohort.group(configs, torch.device("cpu"))
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7]]
    rest = cohort.group(configs[3:], torch.device("cpu"))  # the first cohort finished
    assert [[i + 3 for i in g] for g in rest] == groups[1:]


def test_cohort_refuses_members_that_differ_in_shared_settings():
    data = blobs(n_train=300, n_test=100)
    configs = [cfg(), cfg().replace(batch_size=10)]
    splits = prepare_data(configs[0], data, torch.device("cpu"))
    with pytest.raises(MnistlabError, match="separate cohorts"):
        cohort.train_cohort(configs, splits=splits, outs=[None] * 2, tests=[False] * 2)


def test_a_run_whose_augmentation_does_nothing_joins_a_cohort():
    """--augment none (or rotate=0) is no augmentation: such a run trained alone, at the
    cohort-less speed, because the check read the text, not what it does."""
    for text in ("none", "rotate=0"):  # and with the runs that say nothing of it
        assert cohort.cohort_key(cfg().replace(augment=text)) == cohort.cohort_key(cfg())
    assert cohort.cohort_key(cfg().replace(augment="rotate=5")) is None


# --- a member that stopped early (a review's findings) ----------------------------------------
EARLY = dict(model="mlp", hidden=(32,), optimizer="sgd", lr=0.05, schedule="constant",
             batch_size=50, epochs=4, val_size=200, eval_train_size=200, device="cpu")


def _first_diverges():
    """Member 0 diverges in epoch 1 (a huge rate); member 1 trains all 4 epochs."""
    configs = [TrainConfig(**{**EARLY, "seed": 0, "lr": 1e4}), TrainConfig(**{**EARLY, "seed": 1})]
    return configs, prepare_data(configs[0], blobs(), torch.device("cpu"))


def test_a_cohort_whose_first_member_stopped_resumes_where_it_stopped(tmp_path, monkeypatch):
    """The engine counted finished epochs by member 0's history: after it diverged, a resumed
    cohort started over from its epoch and trained the others' epochs 2 and 3 twice."""
    from mnistlab import interrupt
    from mnistlab.training import engine

    configs, splits = _first_diverges()
    reference = cohort.train_cohort(configs, splits=splits, outs=[None, None],
                                    tests=[False, False])
    real_epoch = engine._epoch

    def ctrl_c_in_epoch_3(run, epoch):
        if epoch == 3:
            interrupt.request()
        return real_epoch(run, epoch)

    checkpoint = tmp_path / "cohort" / "checkpoint.pt"
    monkeypatch.setattr(engine, "_epoch", ctrl_c_in_epoch_3)
    try:
        with pytest.raises(KeyboardInterrupt):
            cohort.train_cohort(configs, splits=splits, outs=[None, None], tests=[False, False],
                                checkpoint=checkpoint)
    finally:
        interrupt.flag().clear()
    monkeypatch.setattr(engine, "_epoch", real_epoch)
    resumed = cohort.train_cohort(configs, splits=splits, outs=[None, None],
                                  tests=[False, False], checkpoint=checkpoint)
    assert [r.summary.status for r in resumed] == ["diverged", "completed"]
    assert [e.epoch for e in resumed[1].history] == [1, 2, 3, 4]
    assert [e.replace(seconds=0) for e in resumed[1].history] == \
        [e.replace(seconds=0) for e in reference[1].history]


def test_the_bar_of_a_cohort_whose_first_member_stopped_goes_on(monkeypatch):
    import io

    from rich.console import Console

    from mnistlab.progress import RichReporter

    configs, splits = _first_diverges()
    seen = []

    class Watch(RichReporter):
        def epoch_ended(self, record):
            super().epoch_ended(record)
            seen.append((record.epoch, self.progress.tasks[0].completed))

    cohort.train_cohort(configs, splits=splits, outs=[None, None], tests=[False, False],
                        reporter=Watch(Console(file=io.StringIO()), epoch_lines=False))
    assert seen == [(e, e * 20) for e in (1, 2, 3, 4)]  # 1,000 images, batches of 50


def test_a_cohort_without_validation_images_says_not_measured():
    configs = [TrainConfig(**{**EARLY, "epochs": 1, "val_size": 0, "seed": s}) for s in (0, 1)]
    splits = prepare_data(configs[0], blobs(), torch.device("cpu"))
    member = cohort.train_cohort(configs, splits=splits, outs=[None, None],
                                 tests=[False, False])[0]
    alone = train(configs[0], splits=splits, evaluate_test=False, write_plots=False)
    for result in (member, alone):
        assert math.isnan(result.history[-1].val_loss)
        assert math.isnan(result.history[-1].val_accuracy)


def test_a_damaged_cohort_checkpoint_does_not_advise_another_out(tmp_path):
    """A cut-short cohort checkpoint offered "or use another --out": for a study, that trains
    every finished run again. Only these runs start over."""
    data = blobs(n_train=400, n_test=100)
    configs = [cfg(seed=0), cfg(seed=1)]
    splits = prepare_data(configs[0], data, torch.device("cpu"))
    checkpoint = tmp_path / "cohorts" / "x" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    with pytest.raises(MnistlabError) as refused:
        cohort.train_cohort(configs, splits=splits, outs=[None] * 2, tests=[False] * 2,
                            checkpoint=checkpoint)
    assert str(refused.value).endswith("delete it and run the same command again: these runs "
                                       "start over, the study's finished runs are kept")
    assert "another --out" not in str(refused.value)


@pytest.mark.parametrize("shape", [(100, 128), (7, 3)])
def test_each_member_s_dropout_masks_are_nn_dropout_s_bit_for_bit(shape):
    """A cohort member draws its masks from its own stream as its run alone's nn.Dropout draws
    them (bernoulli, then divided by the keep probability), leaving the stream where that run
    leaves the global one; a member without dropout draws nothing."""
    rates = [0.2, 0.0, 0.6, 0.5]
    configs = [cfg(dropout=r, seed=i) for i, r in enumerate(rates)]
    stacked = cohort.StackedMLP(_members(configs), "relu", rates)
    stacked.generators = [torch.Generator().manual_seed(10 + i) for i in range(len(rates))]
    h = torch.randn(len(rates), *shape)
    out = stacked._dropped(h)
    for member, rate in enumerate(rates):
        torch.manual_seed(10 + member)
        expected = torch.nn.functional.dropout(h[member], p=rate, training=True)
        assert torch.equal(out[member], expected)
        assert torch.equal(stacked.generators[member].get_state(), torch.get_rng_state())
