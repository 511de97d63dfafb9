"""ONNX export: parity with PyTorch, the sidecar, every registered model, missing extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from drawn import make_run

from mnistlab import MnistlabError, TrainConfig, files, load_dataset
from mnistlab import export as export_module
from mnistlab.cli import main
from mnistlab.data.tensors import to_input
from mnistlab.export import NEEDS_EXTRA, TOLERANCE, export_onnx
from mnistlab.models import list_models
from mnistlab.runs import load_model

onnx = pytest.importorskip("onnx", reason="needs the export extra: pip install 'mnistlab[export]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")


@pytest.mark.slow
def test_trained_lenet_exports_with_parity_and_sidecar(lenet_run, tmp_path):
    result = export_onnx(lenet_run, tmp_path / "out" / "lenet.onnx")
    print(f"\nONNX export of the trained LeNet-5: max |logit difference| "
          f"{result['max_abs_diff']:.2e}, opset {result['opset']}")
    assert result["max_abs_diff"] <= TOLERANCE
    assert result["path"] == str(tmp_path / "out" / "lenet.onnx")
    graph = onnx.load(result["path"]).graph
    assert [i.name for i in graph.input] == ["input"] and graph.output[0].name == "logits"
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # symbolic: any batch size
    _, payload = load_model(lenet_run)
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    assert Path(result["sidecar"]).name == "lenet.onnx.json"
    assert {k: sidecar[k] for k in ("mean", "std", "class_names", "input_scaling")} == {
        "mean": payload["mean"], "std": payload["std"], "class_names": payload["class_names"],
        "input_scaling": payload["config"]["input_scaling"]}
    assert sidecar["input"]["shape"] == ["batch", 1, 28, 28]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lenet.onnx",
                                                                    "lenet.onnx.json"]


@pytest.mark.slow
def test_onnx_and_pytorch_agree_on_the_whole_mnist_test_set(lenet_run, shared_datasets,
                                                             tmp_path):
    path = export_onnx(lenet_run, tmp_path / "lenet.onnx", check=False)["path"]
    model, payload = load_model(lenet_run)
    config = TrainConfig.from_dict(payload["config"])
    ds = load_dataset("mnist", data_dir=str(shared_datasets))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    torch_labels, onnx_labels, worst = [], [], 0.0
    with torch.inference_mode():
        for images in ds.test_images.unsqueeze(1).split(1000):
            x = to_input(images, config, payload["mean"], payload["std"])
            expected = model(x)
            got = session.run(["logits"], {"input": x.numpy()})[0]
            worst = max(worst, float(np.abs(got - expected.numpy()).max()))
            torch_labels.append(expected.argmax(1).numpy())
            onnx_labels.append(got.argmax(1))
    torch_labels, onnx_labels = np.concatenate(torch_labels), np.concatenate(onnx_labels)
    agree = int((torch_labels == onnx_labels).sum())
    accuracy = float((onnx_labels == ds.test_labels.numpy()).mean())
    print(f"\nONNX vs PyTorch on {len(onnx_labels):,} MNIST test images: {agree:,} labels agree, "
          f"max |logit difference| {worst:.2e}, ONNX test accuracy {accuracy:.2%}")
    assert len(onnx_labels) == 10_000 and agree == 10_000
    assert worst <= TOLERANCE


# Every kind of network mnistlab builds: each registered model, both LeNet-5 variants, each
# activation, batch norm and dropout (exported in eval mode), and a cnn whose map shrinks to
# one pixel (where it stops pooling).
KINDS = {
    "mlp": {"model": "mlp", "dropout": 0.2},
    "mlp-gelu": {"model": "mlp", "activation": "gelu", "hidden": (32, 16)},
    "mlp-sigmoid": {"model": "mlp", "activation": "sigmoid", "hidden": (16,)},
    "lenet5-classic": {"model": "lenet5", "variant": "classic"},
    "lenet5-modern": {"model": "lenet5", "batchnorm": True, "dropout": 0.3},
    "cnn": {"model": "cnn", "batchnorm": True, "dropout": 0.25, "filters": (8, 16),
            "dense": (32,)},
    "cnn-one-pixel": {"model": "cnn", "activation": "tanh", "filters": (4, 4, 4, 4, 4, 4),
                      "dense": (8,)},
    "resnet": {"model": "resnet", "filters": (8, 16, 16), "blocks": 1, "dropout": 0.1},
}


def test_the_kinds_cover_every_registered_model():
    assert {kind["model"] for kind in KINDS.values()} == set(list_models())


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_model_exports_with_a_dynamic_batch(tmp_path, kind):
    run = make_run(tmp_path / "run", **KINDS[kind])
    result = export_onnx(run, tmp_path / f"{kind}.onnx")
    assert result["max_abs_diff"] <= TOLERANCE
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    assert sidecar["exporter"] == "torch.export" and result["opset"] == export_module.OPSET
    # Independently of the export's own check: batches of sizes it was not traced with give
    # PyTorch's logits and labels.
    model, _ = load_model(run)
    session = onnxruntime.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for size in (1, 5, 130):
        x = torch.randn(size, 1, 28, 28, generator=generator)
        with torch.inference_mode():
            expected = model(x).numpy()
        got = session.run(["logits"], {"input": x.numpy()})[0]
        assert got.shape == (size, 10)
        assert np.abs(got - expected).max() <= TOLERANCE
        assert (got.argmax(1) == expected.argmax(1)).all()


def test_the_onnx_file_carries_what_the_sidecar_says(tmp_path):
    # A consumer with only the .onnx file: metadata_props hold text, numbers and lists as JSON.
    run = make_run(tmp_path / "run", dataset="fashion-mnist", input_scaling="unit")
    payload = torch.load(run / "model.pt", weights_only=True)
    names = ["Camiseta/top", "Pantalón", "Jersey", "Vestido", "Abrigo", "Sandalia", "Camisa",
             "Zapatilla", "Bolso", "Botín"]
    files.torch_save(run / "model.pt", {**payload, "class_names": names, "mean": 0.2861,
                                        "std": 0.353})
    result = export_onnx(run, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(result["path"]).metadata_props}
    assert meta["class_names"] == json.dumps(names, ensure_ascii=False)
    assert json.loads(meta["class_names"]) == names
    assert float(meta["mean"]) == 0.2861 and float(meta["std"]) == 0.353
    assert meta["input_scaling"] == "unit" and meta["preprocessing"] == "objects"
    assert json.loads(meta["image_shape"]) == [1, 28, 28] and meta["dataset"] == "fashion-mnist"
    assert meta["format"] == "mnistlab-onnx-1"
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    decoded = {k: v if k in ("format", "input_scaling", "preprocessing", "dataset", "mnistlab")
               else json.loads(v) for k, v in meta.items()}
    assert decoded == {k: sidecar[k] for k in meta}
    # What onnxruntime hands to callers in C, C++, C# and Java too.
    session = onnxruntime.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map == meta


def test_a_run_result_is_exported_as_predict_takes_it(tmp_path):
    """export_onnx(train(...)) failed with pathlib's TypeError, where predict takes the same
    RunResult (hunt); one trained without a folder is one line naming the fix."""
    from mnistlab import RunResult, RunSummary

    run = make_run(tmp_path / "run")
    result = RunResult(TrainConfig(), RunSummary(status="completed"), [], out=run)
    assert Path(export_onnx(result, tmp_path / "m.onnx")["path"]).is_file()
    with pytest.raises(MnistlabError, match=r"^run: this RunResult was trained without a "
                       r"folder \(out=None\), and export_onnx reads the run's model\.pt"):
        export_onnx(RunResult(TrainConfig(), RunSummary(status="completed"), []),
                    tmp_path / "n.onnx")


def test_strokes_and_an_unknown_dataset_in_the_metadata(tmp_path):
    run = make_run(tmp_path / "run")
    payload = torch.load(run / "model.pt", weights_only=True)
    files.torch_save(run / "model.pt", {**payload, "dataset": None})
    result = export_onnx(run, tmp_path / "m.onnx", check=False)
    meta = {p.key: p.value for p in onnx.load(result["path"]).metadata_props}
    assert meta["preprocessing"] == "strokes" and meta["input_scaling"] == "standardize"
    assert "dataset" not in meta  # unknown: left out rather than written as "null"
    assert json.loads(Path(result["sidecar"]).read_text())["dataset"] is None


def test_a_model_of_images_predict_does_not_prepare_names_no_preprocessing(tmp_path):
    """A model of 12x16 images: its sidecar said "preprocessing": "strokes", a recipe for
    square grayscale images that `predict` refuses for this model."""
    run = make_run(tmp_path / "run", dataset="x", shape=(1, 12, 16), model="mlp")
    result = export_onnx(run, tmp_path / "m.onnx")
    assert json.loads(Path(result["sidecar"]).read_text())["preprocessing"] is None
    meta = {p.key: p.value for p in onnx.load(result["path"]).metadata_props}
    assert "preprocessing" not in meta and json.loads(meta["image_shape"]) == [1, 12, 16]


def test_unit_scaling_is_recorded(tmp_path):
    run = make_run(tmp_path / "run", input_scaling="unit")
    result = export_onnx(run, tmp_path / "m.onnx")
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    assert sidecar["input_scaling"] == "unit" and "/ 255" in sidecar["input"]["is"]


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime", "onnxscript"])
def test_without_the_export_extra(tmp_path, monkeypatch, missing):
    run = make_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, missing, None)  # import fails, as if not installed
    with pytest.raises(MnistlabError) as caught:
        export_onnx(run, tmp_path / "m.onnx")
    assert str(caught.value) == NEEDS_EXTRA
    assert not (tmp_path / "m.onnx").exists()


def test_large_logits_pass_the_check_by_their_size(tmp_path):
    """An MLP gives logits near 500 on the check's noise images; float32 rounding put them
    1.2e-4 apart (1.2e-6 of the logit), and a healthy model was refused with "report this"."""
    run = make_run(tmp_path / "run", model="mlp", hidden=[32])
    saved = torch.load(run / "model.pt", weights_only=False)
    last = [k for k in saved["state_dict"] if k.endswith("weight")][-1]
    saved["state_dict"][last] *= 3000  # logits in the thousands
    files.torch_save(run / "model.pt", saved)
    result = export_onnx(run, tmp_path / "m.onnx")
    assert result["max_abs_diff"] > TOLERANCE  # refused by an absolute limit, at this size
    assert (tmp_path / "m.onnx").is_file()


def test_failed_parity_check_writes_nothing(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run")
    monkeypatch.setattr(export_module, "_parity", lambda *args: (0.5, 0.5))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MnistlabError, match="disagrees with PyTorch"):
        export_onnx(run, out / "m.onnx")
    assert list(out.iterdir()) == []  # neither the model, its sidecar nor a temporary file


def test_an_exporter_failure_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run")

    def fails(*args, **kwargs):
        raise torch.onnx.errors.OnnxExporterError("aten::frobnicate is not supported\nstack...")

    monkeypatch.setattr(torch.onnx, "export", fails)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MnistlabError) as caught:
        export_onnx(run, out / "m.onnx")
    assert "exporter failed on this model (aten::frobnicate is not supported)" in str(
        caught.value) and "\n" not in str(caught.value)
    assert list(out.iterdir()) == []


def test_ctrl_c_inside_the_exporter_is_a_ctrl_c_not_an_exporter_bug(tmp_path, monkeypatch):
    """The exporter wraps whatever stops it, Ctrl-C too, in its own error (coloured): the
    command must stop as on any Ctrl-C (exit 130), not ask for a bug report."""
    run = make_run(tmp_path / "run")

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise torch.onnx.errors.OnnxExporterError(
                "\x1b[96mThis is step 1/3\x1b[0m of exporting the model") from exc

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (_ for _ in ()).throw(
        torch.onnx.errors.OnnxExporterError("\x1b[96mstep 1/3\x1b[0m failed")))
    with pytest.raises(MnistlabError) as caught:
        export_onnx(run, tmp_path / "m.onnx")
    assert "(step 1/3 failed)" in str(caught.value)  # without the colour codes


def test_the_command_prints_one_line_and_nothing_on_stderr(tmp_path):
    # The real process: the exporter's own chatter (torchvision not installed, torch's
    # deprecations) must not reach the user.
    # A HOME that cannot be written: onnxruntime's telemetry printed a coloured warning as
    # it was imported (hunt); it is off unless the user turns it on.
    run = make_run(tmp_path / "run", model="lenet5")
    (tmp_path / "home").write_text("a file, not a folder")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run([sys.executable, "-m", "mnistlab", "export", str(run), "--out",
                             str(tmp_path / "m.onnx")], capture_output=True, text=True,
                            timeout=300, env={**env, "HOME": str(tmp_path / "home")})
    assert result.returncode == 0 and result.stderr == ""
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{tmp_path / 'm.onnx'}  opset 18  max |logit diff| ")


def test_the_command_without_the_check(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["export", str(run), "--no-check", "--out", str(tmp_path / "m.onnx")]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "not checked (--no-check)" in line and (tmp_path / "m.onnx").is_file()


def test_an_existing_onnx_file_is_kept_unless_overwrite(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an ONNX file in use")
    assert main(["export", str(run), "--no-check", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the file exists and would be replaced" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1 and out.read_bytes() == b"an ONNX file in use"
    assert not out.with_name("m.onnx.json").exists()
    assert main(["export", str(run), "--no-check", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"an ONNX file in use"


def test_a_diverged_model_is_refused_not_checked_as_equal(tmp_path):
    run = make_run(tmp_path / "run")
    payload = torch.load(run / "model.pt", weights_only=True)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in payload["state_dict"].items()}
    files.torch_save(run / "model.pt", {**payload, "state_dict": state})
    with pytest.raises(MnistlabError, match="outputs are not numbers.*nothing was written"):
        export_onnx(run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_sidecar_path_that_is_a_folder_is_refused_before_any_work(tmp_path):
    run = make_run(tmp_path / "run")
    (tmp_path / "m.onnx.json").mkdir()
    with pytest.raises(MnistlabError, match="its sidecar m.onnx.json is a folder there; remove it"):
        export_onnx(run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_file_of_the_user_s_at_the_sidecar_path_is_kept_unless_overwrite(tmp_path):
    """`m.onnx.json` of the user's own beside no `m.onnx` was replaced without a word."""
    run = make_run(tmp_path / "run")
    (tmp_path / "m.onnx.json").write_text('{"my": "notes"}')
    with pytest.raises(MnistlabError, match="its sidecar m.onnx.json exists and would be "
                       "replaced; .* add --overwrite"):
        export_onnx(run, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx.json").read_text() == '{"my": "notes"}'
    assert not (tmp_path / "m.onnx").exists()
    export_onnx(run, tmp_path / "m.onnx", overwrite=True)
    assert json.loads((tmp_path / "m.onnx.json").read_text())["format"] == "mnistlab-onnx-1"


def test_user_mistakes(tmp_path):
    with pytest.raises(MnistlabError, match="nothing: no such folder"):
        export_onnx(tmp_path / "nothing", tmp_path / "m.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnistlabError, match="no model.pt here"):
        export_onnx(tmp_path / "empty", tmp_path / "m.onnx")
    run = make_run(tmp_path / "run")
    (run / "summary.json").write_text("{}")  # what marks a run folder
    with pytest.raises(MnistlabError, match=f"{tmp_path}: a folder holding a run, not a run; "
                                            f"give it: {run}"):
        export_onnx(tmp_path, tmp_path / "m.onnx")  # a folder of runs (a study's runs/)
    with pytest.raises(MnistlabError, match="is a folder.*out.onnx"):
        export_onnx(run, tmp_path)
    # a name ending in a slash names a folder: it wrote the file new.onnx (Path drops the /)
    with pytest.raises(MnistlabError, match=r"new\.onnx/: names a folder \(it ends in /\); "
                                            r"give the file to write, e\.g\. "
                                            r".*new\.onnx/out\.onnx"):
        export_onnx(run, f"{tmp_path}/new.onnx/")
    assert not (tmp_path / "new.onnx").exists()
    with pytest.raises(MnistlabError, match="m.pt: what is written is ONNX; give a name ending "
                                            "in .onnx"):
        export_onnx(run, tmp_path / "m.pt")
    with pytest.raises(MnistlabError, match="m.onnx.pt: what is written is ONNX"):
        export_onnx(run, tmp_path / "m.onnx.pt")
    assert export_onnx(run, tmp_path / ".onnx", check=False)["path"] == str(tmp_path / ".onnx")
    # into the run's own folder: its `train` command then refused the folder as holding
    # "files mnistlab did not write"
    (run / "metrics.csv").write_text("epoch\n")  # with summary.json: what marks a run's
    with pytest.raises(MnistlabError, match=f"--out {run / 'm.onnx'}: inside the run folder "
                                            f"{run.resolve()} .* write it outside that folder"):
        export_onnx(run, run / "m.onnx")
    assert not (run / "m.onnx").exists()


@pytest.mark.parametrize("run_settings, views", [
    (dict(dataset="fashion-mnist", augment="crop=2,flip=0.5"), 18),  # fashion-best's views
    (dict(augment="shift=0.1", ensemble=2), 9)])  # mnist-best's, for an ensemble
def test_a_run_scored_with_tta_exports_its_views_in_the_graph(tmp_path, run_settings, views):
    """The graph holds the test-time views the run's scores used (moves bring in black, as
    they do on pixels before scaling), checked against evaluate's own path; --no-tta gives the
    image alone."""
    run = make_run(tmp_path / "run", model="cnn", filters=(4, 8), dense=(16,), tta=True,
                   **run_settings)
    with_views = export_onnx(run, tmp_path / "views.onnx")
    alone = export_onnx(run, tmp_path / "alone.onnx", tta=False)
    assert with_views["max_abs_diff"] <= TOLERANCE and alone["max_abs_diff"] <= TOLERANCE
    sidecar = json.loads(Path(with_views["sidecar"]).read_text())
    assert sidecar["tta_views"] == views and f"{views} test-time views" in sidecar["output"]["is"]
    assert json.loads(Path(alone["sidecar"]).read_text())["tta_views"] is None
    model, payload = load_model(run)
    config = TrainConfig.from_dict(payload["config"])
    pixels = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    x = to_input(pixels, config, payload["mean"], payload["std"]).numpy()
    outputs = {}
    for name, result in (("views", with_views), ("alone", alone)):
        session = onnxruntime.InferenceSession(result["path"],
                                               providers=["CPUExecutionProvider"])
        outputs[name] = session.run(["logits"], {"input": x})[0]
    assert np.abs(outputs["views"] - outputs["alone"]).max() > 1e-3  # the views do count
