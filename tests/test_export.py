"""ONNX export: parity with PyTorch, the sidecar, every registered model, missing extras."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from drawn import make_run, trained_lenet

from mnistlab import MnistlabError, TrainConfig, load_dataset
from mnistlab import export as export_module
from mnistlab.data.tensors import to_input
from mnistlab.export import MAX_ABS_DIFF, NEEDS_EXTRA, export_onnx
from mnistlab.models import list_models
from mnistlab.runs import load_model

onnx = pytest.importorskip("onnx", reason="needs the export extra: pip install 'mnistlab[export]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory, shared_datasets) -> Path:
    return trained_lenet(tmp_path_factory.mktemp("lenet"), shared_datasets)


@pytest.mark.slow
def test_trained_lenet_exports_with_parity_and_sidecar(lenet_run, tmp_path):
    result = export_onnx(lenet_run, tmp_path / "out" / "lenet.onnx")
    print(f"\nONNX export of the trained LeNet-5: max |logit difference| "
          f"{result['max_abs_diff']:.2e}, opset {result['opset']}")
    assert result["max_abs_diff"] <= MAX_ABS_DIFF
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
    assert worst <= MAX_ABS_DIFF


VARIANTS = {"mlp": {"dropout": 0.2}, "lenet5": {"variant": "classic"},
            "cnn": {"batchnorm": True, "dropout": 0.25, "filters": (8, 16), "dense": (32,)}}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_exports(tmp_path, name):
    run = make_run(tmp_path / "run", model=name, **VARIANTS.get(name, {}))
    result = export_onnx(run, tmp_path / f"{name}.onnx")
    assert result["max_abs_diff"] <= MAX_ABS_DIFF
    assert Path(result["path"]).stat().st_size > 0


def test_unit_scaling_is_recorded(tmp_path):
    run = make_run(tmp_path / "run", input_scaling="unit")
    result = export_onnx(run, tmp_path / "m.onnx")
    sidecar = json.loads(Path(result["sidecar"]).read_text())
    assert sidecar["input_scaling"] == "unit" and "/ 255" in sidecar["input"]["is"]


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_without_the_export_extra(tmp_path, monkeypatch, missing):
    run = make_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, missing, None)  # import fails, as if not installed
    with pytest.raises(MnistlabError) as caught:
        export_onnx(run, tmp_path / "m.onnx")
    assert str(caught.value) == NEEDS_EXTRA
    assert not (tmp_path / "m.onnx").exists()


def test_failed_parity_check_writes_nothing(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run")
    monkeypatch.setattr(export_module, "_parity", lambda *args: 0.5)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MnistlabError, match="disagrees with PyTorch"):
        export_onnx(run, out / "m.onnx")
    assert list(out.iterdir()) == []  # neither the model, its sidecar nor a temporary file


def test_user_mistakes(tmp_path):
    with pytest.raises(MnistlabError, match="no model.pt"):
        export_onnx(tmp_path / "nothing", tmp_path / "m.onnx")
    run = make_run(tmp_path / "run")
    with pytest.raises(MnistlabError, match="is a folder"):
        export_onnx(run, tmp_path)

