"""Export a trained run to ONNX, checked against PyTorch with onnxruntime.

The ONNX graph is the network alone: its input `input` is the float tensor the model sees,
shape (batch, 1, 28, 28), i.e. uint8 pixels / 255, then standardised with the run's mean and
std when input_scaling is "standardize" (the default), left in [0, 1] for "unit", or 0..255 for
"raw". Its output `logits` is (batch, classes); softmax gives probabilities. The sidecar
`<out>.json` holds what a caller needs to build that input and read the output: mean, std,
input_scaling, class_names, image shape and the preprocessing style (see `predict.preprocess`);
the same facts are in the ONNX file's metadata_props, for a caller that has only the model.
docs/export.md says how to reproduce the preprocessing outside Python.

    export_onnx("runs/lenet", "lenet.onnx")  # -> {"path", "max_abs_diff", "opset", "sidecar"}
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, files
from .config import TrainConfig
from .data.sources import image_style, takes_pictures
from .device import public_call
from .errors import MnistlabError
from .records import RunResult
from .training.evaluation import config_views, scored_logits, tta_view_count, view_average

OPSET = 18  # the lowest the torch.export-based exporter writes; onnxruntime >= 1.14 runs it
# The largest logit difference between PyTorch and onnxruntime accepted, relative to the logit
# where it is larger than 1: float32 rounding grows with the value (an MLP gives logits near 500
# on the check's noise images, and a healthy one was refused at 1.2e-4 apart)
TOLERANCE = 1e-4
CHECK_BATCH = 64
SIDECAR_FORMAT = "mnistlab-onnx-1"
NEEDS_EXTRA = "ONNX export needs the export extra: pip install 'mnistlab[export]'"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # terminal colour codes


@public_call("export_onnx")
def export_onnx(run_dir: str | Path | RunResult, out_path: str | Path, *, check: bool = True,
                tta: bool | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write the run's model as ONNX (dynamic batch) plus a JSON sidecar; with `check`, run a
    test batch through onnxruntime and refuse the export if any logit differs by > 1e-4
    (of the logit, where it is larger than 1).
    `tta`: the graph averages the softmax over the test-time views the run's scores used
    (None: as the run was trained, its --tta), as `mnistlab predict` does. `run_dir`: a run
    folder, or train()'s RunResult (of a run trained into one).

    Nothing is written at `out_path` unless the export (and its check) succeeded; a file
    already there is refused unless `overwrite`.
    """
    from .runs import model_of

    _require("onnx", "onnxscript", *(("onnxruntime",) if check else ()))
    import onnx

    out = files.check_output_file(out_path, suffix=".onnx", replace=overwrite)  # before work
    sidecar = out.with_name(out.name + ".json")
    if len(os.fsencode(sidecar.name)) > files.NAME_MAX:  # the model written, then no sidecar
        raise MnistlabError(f"--out {out}: a name too long for its sidecar {out.name}.json "
                            f"(at most {files.NAME_MAX - len('.json')} bytes before .json); "
                            "give a shorter name")
    if sidecar.is_dir():
        raise MnistlabError(f"--out {out}: its sidecar {sidecar.name} is a folder there; "
                            "remove it, or give another --out")
    if not overwrite and sidecar.exists():  # a file of the user's, not ours to replace
        raise MnistlabError(f"--out {out}: its sidecar {sidecar.name} exists and would be "
                            "replaced; give another name, or add --overwrite to replace both")
    model, payload = model_of(run_dir, "export_onnx")
    config = TrainConfig.from_dict(payload["config"])
    shape = tuple(int(v) for v in payload["image_shape"])
    tta = config.tta if tta is None else tta
    _check_finite(model, config, payload, shape)  # a diverged run: with or without --no-check
    graph = _WithViews(model, config, _black(config, payload)) if tta else model
    facts = {**_facts(config, payload, shape),
             "tta_views": tta_view_count(config, shape) if tta else None}

    with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=out.parent) as scratch:
        staged = Path(scratch) / "model.onnx"
        exporter = _export(graph, shape, staged)
        _embed_metadata(staged, facts)
        onnx.checker.check_model(str(staged))
        opset = next(entry.version for entry in onnx.load(str(staged)).opset_import
                     if entry.domain in ("", "ai.onnx"))
        max_abs_diff, relative = (_parity(model, staged, config, payload, shape, tta)
                                  if check else (None, None))
        if relative is not None and not relative <= TOLERANCE:
            raise MnistlabError(
                f"the ONNX model disagrees with PyTorch (max logit difference {max_abs_diff:.2e}, "
                f"{relative:.2e} of the logit; limit {TOLERANCE:.0e}); nothing was written; "
                "report this with your torch and onnxruntime versions")
        files.write_bytes(out, staged.read_bytes())

    files.write_json(sidecar, {
        **facts,
        "model": out.name,
        "input": {"name": "input", "shape": ["batch", *shape], "dtype": "float32",
                  "is": _input_description(config.input_scaling)},
        "output": {"name": "logits", "shape": ["batch", len(payload["class_names"])],
                   "is": _output_description(config, facts["tta_views"])},
        "opset": opset,
        "exporter": exporter,
        "max_abs_diff": max_abs_diff,
        "torch": torch.__version__,
    })
    return {"path": str(out), "max_abs_diff": max_abs_diff, "opset": opset,
            "sidecar": str(sidecar)}


def _facts(config: TrainConfig, payload: dict[str, Any], shape: tuple[int, ...]
           ) -> dict[str, Any]:
    """What a caller needs to turn an image into the model's input and its output into a class:
    written to the sidecar and, as text, into the ONNX file's metadata_props."""
    return {
        "format": SIDECAR_FORMAT,
        "class_names": list(payload["class_names"]),
        "image_shape": list(shape),
        "input_scaling": config.input_scaling,
        "mean": payload["mean"],
        "std": payload["std"],
        # a picture made into the model's input as `predict` does; it takes square grayscale
        # images only: for other shapes there is no such recipe to name
        "preprocessing": (image_style(payload.get("dataset")) if takes_pictures(shape)
                          else None),
        "dataset": payload.get("dataset"),
        "mnistlab": __version__,
        # an ensemble's members, averaged inside the graph
        **({"ensemble_members": config.ensemble} if config.ensemble > 1 else {}),
    }


def _metadata_text(facts: dict[str, Any]) -> dict[str, str]:
    """metadata_props holds only strings: text as it is, numbers and lists as JSON (so mean
    reads "0.1307" and class_names '["0", "1", ...]'); unknown values (None) are left out."""
    return {key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            for key, value in facts.items() if value is not None}


def _embed_metadata(path: Path, facts: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, _metadata_text(facts))
    onnx.save(proto, str(path))


def _require(*modules: str) -> None:
    if any(importlib.util.find_spec(name) is None for name in modules):
        raise MnistlabError(NEEDS_EXTRA)
    # onnxruntime (1.29 on) starts telemetry as it is imported: it keeps a device id under
    # ~/.cache, tries to send a process event, and where HOME cannot be written printed a
    # coloured warning before the export's lines (hunt); a user's own setting stands
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    for name in modules:
        try:
            __import__(name)
        except ImportError:  # installed but broken (e.g. a missing shared library)
            raise MnistlabError(NEEDS_EXTRA) from None


def _export(model: torch.nn.Module, shape: tuple[int, ...], path: Path) -> str:
    """Export with torch.export (torch.onnx.export's dynamo=True) and a dynamic batch dimension;
    returns the exporter's name for the sidecar.

    Every registered model (mlp, both LeNet-5 variants, cnn, each activation, batch norm,
    dropout) exports this way, so there is no TorchScript fallback: a failure here is a bug,
    said in one line rather than papered over with the deprecated exporter.
    """
    model = model.cpu().eval()
    example = (torch.zeros(2, *shape),)
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with _quiet_exporter():
            torch.onnx.export(model, example, str(path), input_names=["input"],
                              output_names=["logits"], opset_version=OPSET, dynamo=True,
                              dynamic_shapes=({0: batch},), external_data=False, verbose=False)
    except torch.onnx.errors.OnnxExporterError as exc:
        if _cause_chain_has(exc, KeyboardInterrupt):  # Ctrl-C, wrapped by the exporter: not a
            raise KeyboardInterrupt from None  # bug; the command stops as on any Ctrl-C
        raise MnistlabError(
            f"torch's ONNX exporter failed on this model ({_first_line(exc)}); nothing was "
            "written; report this with your torch and onnxscript versions") from None
    return "torch.export"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what the exporter says about itself, not about the model: that torchvision's
    operators are not registered (mnistlab has none) and torch's internal deprecations."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = ANSI.sub("", str(exc)).strip()  # the exporter colours its own messages
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _cause_chain_has(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _check_finite(model: torch.nn.Module, config: TrainConfig, payload: dict[str, Any],
                  shape: tuple[int, ...]) -> None:
    """Refuse a model whose outputs are not numbers (a diverged run): its ONNX file would be
    no use, and its parity check would compare NaN with NaN."""
    from .runs import check_finite

    pixels = torch.randint(0, 256, (4, *shape), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = scored_logits(model, pixels, config, payload["mean"], payload["std"], False)
    check_finite(logits, " (nothing was written)")


def _parity(model: torch.nn.Module, path: Path, config: TrainConfig, payload: dict[str, Any],
            shape: tuple[int, ...], tta: bool) -> tuple[float, float]:
    """Max |logit difference|, and the largest as a fraction of its logit (or of 1, where the
    logit is smaller), over a seeded batch of random images and a single image (which
    also proves the batch dimension is dynamic: the graph was traced with a batch of 2),
    against what `evaluate` and `predict` compute from the same pixels (with `tta`, their
    views: moved before scaling, so black comes in at the edges)."""
    import onnxruntime

    from .data.tensors import to_input

    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (CHECK_BATCH, *shape), dtype=torch.uint8, generator=generator)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = relative = 0.0
    with torch.inference_mode():
        for batch in (pixels, pixels[:1]):
            expected = scored_logits(model, batch, config, payload["mean"], payload["std"],
                                     tta).numpy()
            x = to_input(batch, config, payload["mean"], payload["std"])
            got = session.run(["logits"], {"input": x.numpy()})[0]
            if got.shape != expected.shape or not np.isfinite(got).all():
                return float("inf"), float("inf")
            apart = np.abs(got - expected)
            worst = max(worst, float(apart.max()))
            relative = max(relative, float((apart / np.maximum(1.0, np.abs(expected))).max()))
    return worst, relative


class _WithViews(torch.nn.Module):
    """The model over the run's test-time views, inside the graph: the log of its softmax
    averaged over them. The input is already scaled, so a move brings in a black pixel's
    scaled value, as moving the pixels before scaling does."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, black: float) -> None:
        super().__init__()
        self.model, self.config, self.black = model, config, black

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return view_average([self.model(v) for v in config_views(x, self.config, self.black)])


def _black(config: TrainConfig, payload: dict[str, Any]) -> float:
    """A black pixel as the model's input sees it."""
    from .data.tensors import to_input

    zero = torch.zeros(1, dtype=torch.uint8)
    return float(to_input(zero, config, payload["mean"], payload["std"]))


def _output_description(config: TrainConfig, views: int | None) -> str:
    averaged = [*([f"{config.ensemble} members"] if config.ensemble > 1 else []),
                *([f"{views} test-time views of each image"] if views else [])]
    if not averaged:
        return "unnormalised scores; softmax over classes gives probabilities"
    return (f"log of the probabilities averaged over {' and '.join(averaged)}; softmax over "
            "classes (or exp) gives those probabilities")


def _input_description(scaling: str) -> str:
    if scaling == "standardize":
        return "(uint8 pixels / 255 - mean) / std, bright content on black"
    if scaling == "unit":
        return "uint8 pixels / 255, bright content on black"
    return "uint8 pixels as floats 0..255, bright content on black"
