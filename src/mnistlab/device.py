"""Where training runs: the device (`auto` picks CUDA, then Apple's MPS, then the CPU) and the
memory layout a model trains fastest in there."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from .errors import MnistlabError, each_warning_once

F = TypeVar("F", bound=Callable[..., Any])


def public_call(name: str) -> Callable[[F], F]:
    """What every function a user's script or notebook calls (train, run_study, run_tune,
    predict, export_onnx) does first and last:
    - refuses a call from a script a worker process imports (its top level, outside `if
      __name__ == "__main__":`): each worker trained the script's own train() again (a
      minute each) before its run_study was refused;
    - leaves torch's random state (the CPU's) as the caller had it: a notebook's later draws
      were fixed by mnistlab's seed, whatever seed the user had set (hunt)."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def called(*args: Any, **kwargs: Any) -> Any:
            if _from_a_worker_s_import():
                raise MnistlabError(
                    f"{name}: a worker process imported the script that calls it; put the "
                    "call under `if __name__ == \"__main__\":` (worker processes import the "
                    "script they were started from)")
            # the CPU's generator (a GPU's is left as training leaves it: CUDA graphs hold
            # on to its state, and restoring it under them has not been measured)
            with torch.random.fork_rng(devices=[]), each_warning_once():
                return fn(*args, **kwargs)
        return called  # type: ignore[return-value]
    return decorate


WORKER_MARK = "MNISTLAB_STUDY_WORKER"  # in the environment of a study's worker processes


def _from_a_worker_s_import() -> bool:
    """Called by a script's top-level code while a study's worker process imports it (as
    `__mp_main__`): the script has no `if __name__ == "__main__":` around the call. Only a
    study's (marked at their start): a user's own Pool, whose workers ran such a script
    slowly, started new ones forever where each was refused (review)."""
    if os.environ.get(WORKER_MARK) != "1":
        return False
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") == "__mp_main__" and frame.f_code.co_name == "<module>":
            return True
        frame = frame.f_back
    return False


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """`auto` -> the best device present; an explicit one must be present."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MnistlabError(
            "device: cuda was asked for but no CUDA GPU is visible; use --device auto, or "
            "device = \"auto\" where a file sets it (a study's variant keeps its own device)")
    if name == "mps" and not mps_available():
        raise MnistlabError("device: mps was asked for but is not available; use --device "
                            "auto, or device = \"auto\" where a file sets it (a study's variant "
                            "keeps its own device)")
    return torch.device(name)


def to_fast_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; conv nets go channels-last, which oneDNN (CPU) and cuDNN run much
    faster (measured here: a 16-32-64 conv net step at batch 256, 68 -> 39 ms)."""
    model = model.to(device)
    if device.type in ("cpu", "cuda") and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


def wide_float(device: torch.device) -> torch.dtype:
    """The dtype of sums kept on `device` over an epoch (losses, counts): float64, except on
    Apple's MPS, which has none (float32 sums there: exact for counts up to 2**24)."""
    return torch.float32 if device.type == "mps" else torch.float64


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a CUDA GPU that supports it (Ampere and
    later), or a CPU with AVX-512 BF16 or AMX. Elsewhere torch emulates it, more slowly than
    float32 (see docs/training.md for a measurement)."""
    if device.type == "cuda":
        # native from Ampere (compute capability 8) on; torch's own check also counts the
        # emulation older GPUs (T4, V100) can run, slower than float32
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse, in one line, bf16 where it would be emulated (slower, for no gain)."""
    if precision == "bf16" and not native_bf16(device):
        where = {"cpu": "this CPU has neither AVX-512 BF16 nor AMX",
                 "cuda": "this GPU has none (it came with Ampere, compute capability 8)"
                 }.get(device.type, f"{device.type} is not supported")
        raise MnistlabError(f"precision: bf16 needs native bfloat16 arithmetic and {where} "
                            "(emulated it is slower than fp32); use --precision fp32")


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> bf16 where `device` has it natively, else fp32; an explicit choice is checked
    (check_precision) and kept."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    check_precision(precision, device)
    return precision


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The training step's autocast: bf16 matrix multiplies and convolutions for a resolved
    `bf16` (resolve_precision), a no-op context for fp32. On CUDA without autocast's weight cache,
    which CUDA graphs cannot hold (training/graphs.py; each weight is cast once a step anyway)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16",
                          cache_enabled=False if device.type == "cuda" else None)
