"""Data-parallel training over processes started by `torchrun`: the process group, each rank's
share of the batches, and the sums and broadcasts that keep the ranks in step.

    torchrun --standalone --nproc_per_node=2 -m stocksent.cli train ...

A lone process (no WORLD_SIZE in the environment) is a world of one and nothing here talks to
other processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .device import resolve_device


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"


def join(device_name: str) -> World:
    """The world torchrun describes in the environment, with its process group started."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if size == 1:
        return World(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    world = World(int(os.environ["RANK"]), size, device)
    dist.init_process_group(world.backend)
    return world


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World) -> nn.Module:
    """DistributedDataParallel over the ranks (it averages gradients in backward), or the model."""
    if world.size == 1:
        return model
    ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(batches: list[np.ndarray], world: World) -> list[np.ndarray]:
    """This rank's whole batches. Every rank holds the same list (same seed), takes every
    size-th batch from its rank on, and leaves out the few at the end that do not divide evenly,
    so all ranks run the same number of steps."""
    usable = len(batches) // world.size * world.size
    return batches[world.rank:usable:world.size]


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum of `values` over the ranks."""
    if world.size == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(total)
    return total.tolist()


def from_main(values: list[float], world: World) -> list[float]:
    """Rank 0's `values` on every rank (decisions such as early stopping must agree)."""
    if world.size == 1:
        return values
    sent = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.broadcast(sent, src=0)
    return sent.tolist()


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()
