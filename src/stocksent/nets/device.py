"""Devices: which one a run uses, moving batches onto it, and mixed precision."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import StocksentError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is the GPU when torch sees one, else the CPU; `cuda` without a GPU is an error."""
    if name not in DEVICES:
        raise StocksentError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise StocksentError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu or auto)")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def to_device(device: torch.device, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Copy host tensors to `device`; through pinned memory so the copy overlaps GPU work."""
    if device.type == "cpu":
        return tensors
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)


def bf16_used(device: torch.device, bf16: bool) -> bool:
    """Whether a run asked for bfloat16 (`bf16`) computes in it on `device`: where the device
    multiplies bfloat16 natively, a CUDA GPU from Ampere on or a CPU with AVX-512 BF16 or AMX; else
    the run keeps float32, as the CPU LSTM kernel (oneDNN) emulates bfloat16 slowly on other
    CPUs, or fails mid-epoch."""
    if not bf16:
        return False
    if device.type == "cuda":  # Ampere and later: earlier GPUs only emulate it
        return torch.cuda.get_device_capability(device) >= (8, 0)
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast when asked (matrix products in bf16, weights and loss kept in fp32)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to `count` for the block (0: left as they are), then given back:
    a run's setting is not the caller's after it."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
