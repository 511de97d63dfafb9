"""--ensemble N: members fused into one network train in lockstep exactly as they would alone;
the run scores the averaged softmax and each member; the run folder loads, predicts, evaluates
and exports like any other (the ONNX graph holds the averaging)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from drawn import make_run
from synth import blobs
from tiny_study import write_tiny_study
from torch import nn

from mnistlab import MnistlabError, StudyOptions, TrainConfig, run_study, train
from mnistlab.cli import main
from mnistlab.data.tensors import to_input
from mnistlab.ensemble import Ensemble, MemberView, average_logits
from mnistlab.models import build_model, estimate_size, list_models
from mnistlab.predict import predict
from mnistlab.runs import load_model
from mnistlab.study import load_study
from mnistlab.training import cohort
from mnistlab.training.evaluation import evaluate, tta_view_count

KINDS = {
    "mlp": dict(model="mlp", hidden=(32, 16), dropout=0.0),
    "lenet5": dict(model="lenet5", variant="modern", batchnorm=True),
    "cnn": dict(model="cnn", filters=(4, 8), dense=(16,), batchnorm=True),
    "resnet": dict(model="resnet", filters=(4, 8), blocks=1),
}
SMALL = dict(model="cnn", filters=(4, 8), dense=(16,), batchnorm=True, val_size=200,
             eval_train_size=200, batch_size=50, epochs=2, seed=3, device="cpu")


def members_alone(settings: dict, seeds: range) -> list[torch.nn.Module]:
    """Each member as train() builds it alone: seeded, then built."""
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model(TrainConfig(seed=seed, **settings), (1, 28, 28), 10))
    return models


def test_the_kinds_cover_every_registered_model():
    assert {kind["model"] for kind in KINDS.values()} == set(list_models())


@pytest.mark.parametrize("kind", KINDS)
def test_the_fused_network_is_its_members_side_by_side(kind):
    # Member m starts from the weights train() gives seed s+m, and the fused layers compute
    # each member's own function, with per-member batch-norm statistics in training mode.
    x = torch.randn(9, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert_members_alone(KINDS[kind], x, lambda m: x)


def assert_members_alone(settings: dict, x: torch.Tensor, member_input) -> None:
    """A 3-member ensemble (seeds 5-7) on x gives, in eval and training mode, what each member
    alone gives on member_input(m)."""
    fused = build_model(TrainConfig(ensemble=3, seed=5, **settings), (1, 28, 28), 10)
    alone = members_alone(settings, range(5, 8))
    for training in (False, True):
        fused.train(training)
        for model in alone:
            model.train(training)
        with torch.no_grad():
            logits = fused.member_logits(x)
            assert logits.shape == (3, len(x), 10)
            for m, model in enumerate(alone):
                torch.testing.assert_close(logits[m], model(member_input(m)), atol=1e-5,
                                           rtol=1e-5)


def test_each_member_can_take_its_own_images():
    # (B, N*C, H, W): member m's copy in block m of the channels, through its own filters
    assert build_model(TrainConfig(ensemble=3, **KINDS["cnn"]), (1, 28, 28), 10).takes_own_images
    own = torch.randn(6, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    assert_members_alone(KINDS["cnn"], own, lambda m: own[:, m:m + 1])
    mlp = build_model(TrainConfig(ensemble=2, **KINDS["mlp"]), (1, 28, 28), 10)
    assert not mlp.takes_own_images  # a dense first layer: the members share the image


@pytest.mark.parametrize("augment, copies", [("shift=0.1", 2), ("", 1)])
def test_with_augmentation_each_member_draws_its_own(monkeypatch, augment, copies):
    seen = []
    original = Ensemble.member_logits

    def spy(self, x):
        if self.training:
            seen.append(x.detach().clone())
        return original(self, x)

    monkeypatch.setattr(Ensemble, "member_logits", spy)
    result = train(TrainConfig(ensemble=2, augment=augment, **{**SMALL, "epochs": 1}),
                   dataset=blobs())
    assert seen and all(x.shape[1] == copies for x in seen)
    if copies == 2:  # two draws of the same images, not one image twice
        assert all(not torch.equal(x[:, 0], x[:, 1]) for x in seen)
    assert 0 <= result.summary.test_accuracy <= 1 and len(result.summary.members) == 2


def test_no_gradient_crosses_members():
    settings = KINDS["cnn"]
    fused = build_model(TrainConfig(ensemble=2, seed=0, **settings), (1, 28, 28), 10)
    alone = members_alone(settings, range(2))
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    logits = fused.member_logits(x)
    sum(torch.nn.functional.cross_entropy(logits[m], y) for m in range(2)).backward()
    for model in alone:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    first_fused = next(fused.parameters()).grad  # the first conv: members' filters stacked
    firsts = [next(model.parameters()).grad for model in alone]
    torch.testing.assert_close(first_fused, torch.cat(firsts), atol=1e-5, rtol=1e-4)
    last_fused = list(fused.parameters())[-2].grad  # the classifier's (N, in, out) weight
    lasts = [list(model.parameters())[-2].grad.t() for model in alone]
    torch.testing.assert_close(last_fused, torch.stack(lasts), atol=1e-5, rtol=1e-4)


def test_the_output_is_the_log_of_the_averaged_softmax():
    logits = torch.randn(4, 6, 10) * 5
    averaged = average_logits(logits)
    torch.testing.assert_close(averaged.exp(), logits.softmax(-1).mean(0))
    torch.testing.assert_close(averaged.softmax(-1), averaged.exp())  # a valid logit


class _Whole(nn.Module):
    """An ensemble behind a plain module: scored through its forward alone."""

    def __init__(self, ensemble: Ensemble) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble(x)


def test_members_are_scored_alone_in_the_ensembles_one_pass_with_tta():
    # evaluate() reads every member off the ensemble's own pass; each figure is the member's
    # own, scored alone with the same test-time augmentation, and the ensemble's scores are
    # those of its forward
    config = TrainConfig(ensemble=3, tta=True, **SMALL)
    model = build_model(config, (1, 28, 28), 10).eval()
    data = blobs()
    x, y = data.test_images.unsqueeze(1), data.test_labels
    scored = dict(config=config, mean=data.mean, std=data.std, num_classes=10, batch_size=64,
                  tta=True)
    calls = []
    hook = model.net.register_forward_pre_hook(lambda *_: calls.append(1))
    together = evaluate(model, x, y, **scored)
    hook.remove()
    batches = -(-len(y) // 64)
    views = tta_view_count(config, tuple(x.shape[1:]))
    assert len(calls) == batches * views  # one pass, not one more per member
    alone = [evaluate(MemberView(model, i), x, y, **scored).accuracy for i in range(3)]
    assert together.member_accuracies == pytest.approx(alone)
    assert len(set(alone)) > 1  # three different networks, told apart
    whole = evaluate(_Whole(model), x, y, **scored)
    assert whole.member_accuracies is None
    # the same scores, up to the order of the averages' float sums (one image at most)
    assert together.accuracy == pytest.approx(whole.accuracy, abs=1.01 / len(y))
    assert together.loss == pytest.approx(whole.loss, rel=1e-5)
    assert int((together.predictions != whole.predictions).sum()) <= 1
    assert evaluate(model, x[:0], y[:0], **scored).member_accuracies is None


def test_a_run_scores_the_ensemble_and_each_member(tmp_path):
    result = train(TrainConfig(ensemble=3, **SMALL), dataset=blobs(), out=tmp_path / "run")
    summary = result.summary
    assert isinstance(result.model, Ensemble) and result.model.size == 3
    assert [m["seed"] for m in summary.members] == [3, 4, 5]
    assert all(0 <= m["test_accuracy"] <= 1 and 0 <= m["val_accuracy"] <= 1
               for m in summary.members)
    # the members' accuracies are those of the members themselves, scored alone
    view = MemberView(result.model.eval(), 1)
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert stored["members"] == summary.members
    single = build_model(TrainConfig(**SMALL), (1, 28, 28), 10)
    assert stored["parameters"] == 3 * sum(p.numel() for p in single.parameters())
    data = blobs()
    with torch.no_grad():
        x = to_input(data.test_images.unsqueeze(1), result.config, data.mean, data.std)
        alone = float((view(x).argmax(1) == data.test_labels).float().mean())
    assert alone == pytest.approx(summary.members[1]["test_accuracy"])
    # the same folder loads back as the ensemble, with the same predictions
    model, _ = load_model(tmp_path / "run")
    assert isinstance(model, Ensemble)
    with torch.no_grad():
        torch.testing.assert_close(model(x), result.model(x))


def test_members_train_as_they_would_alone(tmp_path):
    # No dropout, no augmentation: nothing random but the initial weights, so member m of the
    # lockstep run is the one-by-one run of seed s+m, up to float rounding.
    config = TrainConfig(ensemble=2, **SMALL)
    fused = train(config, dataset=blobs(), evaluate_test=True)
    for m in range(2):
        alone = train(config.replace(ensemble=1, seed=SMALL["seed"] + m), dataset=blobs())
        assert fused.summary.members[m]["val_accuracy"] == pytest.approx(
            alone.summary.val_accuracy, abs=0.011)  # at most two of 200 images
        assert fused.summary.members[m]["test_accuracy"] == pytest.approx(
            alone.summary.test_accuracy, abs=0.011)


def test_the_command_prints_each_member_and_evaluate_predict_work(tmp_path, tiny_idx_dir,
                                                                  capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(tiny_idx_dir), "--model", "cnn", "--filters", "4,8",
                 "--dense", "16", "--epochs", "1", "--val-size", "40", "--ensemble", "2",
                 "--device", "cpu", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2" in out and "members alone" in out
    assert main(["evaluate", str(run), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    assert scored["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert scored["members"] == [{"seed": m["seed"], "test_accuracy": pytest.approx(
        m["test_accuracy"])} for m in summary["members"]]
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    printed = capsys.readouterr().out
    assert "members alone, val acc by seed: 0: " in printed and "1: " in printed
    model, payload = load_model(run)
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[:, 8:20, 12:16] = 255
    got = predict((model, payload), list(images), top=10)
    assert [p.error for p in got] == [None] * 3
    assert all(sum(prob for _, prob in p.top) == pytest.approx(1, abs=1e-4) for p in got)


def test_the_onnx_graph_holds_the_averaging(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")
    onnx = pytest.importorskip("onnx", reason="needs the export extra")
    from mnistlab.export import TOLERANCE, export_onnx

    run = make_run(tmp_path / "run", **KINDS["cnn"], ensemble=3)
    result = export_onnx(run, tmp_path / "ensemble.onnx")
    assert result["max_abs_diff"] <= TOLERANCE
    model, _ = load_model(run)
    session = onnxruntime.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    x = torch.randn(7, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        members = model.member_logits(x)
    got = session.run(["logits"], {"input": x.numpy()})[0]
    assert got.shape == (7, 10)
    expected = members.softmax(-1).mean(0).numpy()  # the members' averaged softmax
    np.testing.assert_allclose(np.exp(got), expected, atol=1e-5)
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    assert sidecar["ensemble_members"] == 3 and "averaged" in sidecar["output"]["is"]
    metadata = {p.key: p.value for p in onnx.load(result["path"]).metadata_props}
    assert json.loads(metadata["ensemble_members"]) == 3


def test_settings_and_refusals():
    with pytest.raises(MnistlabError, match="ensemble: must be a whole number >= 1"):
        TrainConfig(ensemble=0)
    with pytest.raises(MnistlabError, match="ensemble: at most"):
        TrainConfig(ensemble=1000)
    # an ensemble already trains in lockstep: never grouped into a cohort
    assert cohort.cohort_key(TrainConfig(model="mlp", ensemble=2)) is None
    assert cohort.cohort_key(TrainConfig(model="mlp")) is not None
    # the size check sees N members
    one, three = (estimate_size(TrainConfig(model="cnn", ensemble=n)) for n in (1, 3))
    assert three.parameters == 3 * one.parameters
    assert three.train_activation_bytes > 2.5 * one.train_activation_bytes
    # at the default, the setting stays out of a run's identity (old run folders still match)
    assert "ensemble" not in TrainConfig().identity_dict()
    assert TrainConfig(ensemble=2).identity_dict()["ensemble"] == 2
    with pytest.raises(MnistlabError, match="at least 2 members"):
        Ensemble([torch.nn.Linear(2, 2)])


def test_a_study_can_take_the_ensemble_as_a_factor(tmp_path, shared_datasets):
    text = write_tiny_study(tmp_path / "tiny.toml", shared_datasets).read_text()
    head = text[:text.index("[[experiment]]")]
    assert "seeds = 2" in head
    (tmp_path / "ens.toml").write_text(
        head.replace('device = "cpu"', 'device = "cpu"\nseed = 5') + '[[experiment]]\n'
        'name = "ensemble"\nfactor = "ensemble"\nvalues = [1, 3]\n[final]\nchoose = "none"\n')
    run_study(load_study(str(tmp_path / "ens.toml")), tmp_path / "S", options=StudyOptions())
    rows = list(csv.DictReader((tmp_path / "S" / "results.csv").open()))
    assert sorted(r["value"] for r in rows if r["experiment"] == "ensemble") == ["1", "1", "3",
                                                                                "3"]
    folders = [json.loads(p.read_text()) for p in (tmp_path / "S").rglob("summary.json")]
    assert any(len(s.get("members") or []) == 3 for s in folders)
    # the tables number replicates from the base seed 5: "ensemble=3, seed 6" trained members
    # 8-10, and the report says how (it said "from 5 + k·N" of a seed 1 no table showed)
    [second] = [r for r in rows if r["value"] == "3" and r["seed"] == "6"]
    assert "seed = 8\n" in (tmp_path / "S" / "runs" / second["run"] / "config.toml").read_text()
    report = (tmp_path / "S" / "report.md").read_text()
    assert ("its seed s trains members with seeds from 5 + (s − 5)·N (seed 6 of an ensemble "
            "of 3: seeds 8, 9 and 10;") in report
