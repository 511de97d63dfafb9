"""--precision bf16: refused in one line where bfloat16 would be emulated; where it is native,
the training step runs under autocast (stood in for here by saying the CPU has it)."""

import pytest
import torch
from synth import blobs

from mnistlab import TrainConfig, device, train
from mnistlab.cli import main
from mnistlab.errors import MnistlabError
from mnistlab.training import Hook

FAST = dict(model="cnn", filters=(4, 8), dense=(16,), val_size=200, eval_train_size=200,
            batch_size=50, epochs=1, device="cpu")


def test_bf16_is_refused_in_one_line_where_it_is_not_native(monkeypatch):
    monkeypatch.setattr(device, "native_bf16", lambda d: False)
    with pytest.raises(MnistlabError) as info:
        train(TrainConfig(**FAST, precision="bf16"), dataset=blobs())
    text = str(info.value)
    assert text.startswith("precision: bf16 needs native bfloat16") and "\n" not in text
    assert "use --precision fp32" in text


@pytest.mark.skipif(device.native_bf16(torch.device("cpu")), reason="this CPU has bf16")
def test_the_command_refuses_bf16_here_with_exit_2(tmp_path, capsys, tiny_idx_dir):
    code = main(["train", "--quiet", "--dataset", str(tiny_idx_dir), "--val-size", "100",
                 "--model", "mlp", "--precision", "bf16", "--device", "cpu", "--out",
                 str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "this CPU has neither AVX-512 BF16 nor AMX" in err
    assert len(err.strip().splitlines()) == 1


def test_where_native_the_step_runs_in_bf16_and_evaluation_in_fp32(monkeypatch):
    monkeypatch.setattr(device, "native_bf16", lambda d: True)
    dtypes = {"step": set(), "eval": set()}

    class Watch(Hook):
        def on_run_start(self, run):
            model = run.learner.model
            model.register_forward_hook(
                lambda m, i, out: dtypes["step" if m.training else "eval"].add(out.dtype))

    result = train(TrainConfig(**{**FAST, "epochs": 2}, precision="bf16"), dataset=blobs(),
                   hooks=[Watch()])
    assert dtypes == {"step": {torch.bfloat16}, "eval": {torch.float32}}
    assert result.summary.val_accuracy > 0.3  # it learns: chance is 0.1


@pytest.mark.parametrize("native", [False, True])
def test_auto_is_bf16_where_native_and_fp32_elsewhere_and_the_summary_says_which(monkeypatch,
                                                                                  native):
    monkeypatch.setattr(device, "native_bf16", lambda d: native)
    dtypes = set()

    class Watch(Hook):
        def on_run_start(self, run):
            run.learner.model.register_forward_hook(
                lambda m, i, out: dtypes.add(out.dtype) if m.training else None)

    result = train(TrainConfig(**FAST, precision="auto"), dataset=blobs(), hooks=[Watch()])
    assert dtypes == {torch.bfloat16 if native else torch.float32}
    assert result.summary.precision == ("bf16" if native else "fp32")
    assert result.summary.to_dict()["precision"] == result.summary.precision


def test_an_fp32_summary_leaves_precision_out():
    result = train(TrainConfig(**FAST), dataset=blobs())
    assert result.summary.precision is None and "precision" not in result.summary.to_dict()


@pytest.mark.parametrize("major,native", [(7, False), (8, True), (9, True)])
def test_a_gpu_has_native_bf16_from_ampere_on_not_where_torch_emulates_it(monkeypatch, major,
                                                                          native):
    """torch.cuda.is_bf16_supported() is True on a T4 or V100 (compute capability 7), which
    only emulate bfloat16, slower than float32: `auto` chose bf16 there for every recipe."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (major, 5))
    assert device.native_bf16(torch.device("cuda")) is native
    assert device.resolve_precision("auto", torch.device("cuda")) == ("bf16" if native
                                                                       else "fp32")
    if not native:
        with pytest.raises(MnistlabError, match="compute capability 8"):
            device.check_precision("bf16", torch.device("cuda"))


def test_the_binary_loss_is_computed_outside_autocast_where_cuda_refuses_it(monkeypatch):
    """CUDA's autocast refuses F.binary_cross_entropy whatever its inputs: `--loss bce` under
    bf16 failed every step on a GPU. The loss now leaves autocast, in float32 (stood in for
    here by the CPU's autocast, which lets it through)."""
    from mnistlab import objectives

    seen = []
    real = objectives.F.binary_cross_entropy

    def watched(probs, target, *args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), probs.dtype))
        return real(probs, target, *args, **kwargs)

    monkeypatch.setattr(objectives.F, "binary_cross_entropy", watched)
    monkeypatch.setattr(device, "native_bf16", lambda d: True)
    result = train(TrainConfig(**FAST, precision="bf16", loss="bce", metric="binary-accuracy"),
                   dataset=blobs())
    assert seen and set(seen) == {(False, torch.float32)}
    assert result.summary.status != "diverged"


def test_epoch_sums_in_float32_as_on_mps_give_the_float64_figures(monkeypatch):
    """Apple's MPS has no float64: the epoch's sums there are float32 (device.wide_float),
    where a float64 tensor on the device failed every run in its first epoch. Stood in for
    here by float32 sums on the CPU, for a run alone and a cohort."""
    from mnistlab.data.tensors import prepare_data
    from mnistlab.training import cohort, engine

    config = TrainConfig(model="mlp", hidden=(16,), val_size=200, eval_train_size=200,
                         batch_size=50, epochs=2, device="cpu")
    data = blobs()
    splits = prepare_data(config, data, torch.device("cpu"))

    def both() -> list:
        together = cohort.train_cohort([config, config.replace(seed=1)], splits=splits,
                                       outs=[None] * 2, tests=[False] * 2)
        return [train(config, splits=splits).history, together[1].history]

    wide = both()
    for module in (engine, cohort):
        monkeypatch.setattr(module, "wide_float", lambda d: torch.float32)
    narrow = both()
    for a, b in zip(wide, narrow):
        assert [r.val_accuracy for r in a] == [r.val_accuracy for r in b]
        assert [r.train_loss for r in a] == pytest.approx([r.train_loss for r in b], rel=1e-5)
