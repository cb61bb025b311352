"""An ensemble's members trained at once, each on a thread of its own: the training step's
forward and backward passes of the `default` preset's two networks run side by side on the
machine's cores, where one after the other each would split its small matrix products over them
(with fewer threads than members they take turns, drawing the same masks).

    MemberThreads(ensemble, bf16).step(tokens, lengths, targets, loss) -> (mean loss, logits (B, K))

Each member reads the same batch and learns from its own loss, as in one pass; its dropout masks
come from a generator of its own, seeded from torch's default one at the start of each epoch
(train.seed_everything), so a run draws the same masks whichever thread gets to its draws first
and a resumed run draws what an uninterrupted one would.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from ..nets.device import autocast
from ..nets.dropout import Dropout
from ..nets.model import SentimentEnsemble, SentimentLSTM

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> mean loss


class MemberThreads:
    """An ensemble's members, each drawing its masks from a generator of its own, stepped on a pool
    of one thread per member when the CPU has a thread for each (else one after the other, the
    same masks drawn), each forward pass under bfloat16 autocast when `bf16`. torch's intra-op
    threads are one setting for the whole process, so it is 1 while the pool runs, until close()
    gives the rest of the run its threads back."""

    def __init__(self, model: SentimentEnsemble, bf16: bool = False):
        self.members, self.bf16 = model.members(), bf16
        self.threads = torch.get_num_threads()
        self.pool = ThreadPoolExecutor(len(self.members)) if self.threads >= len(self.members) else None
        if self.pool is not None:
            torch.set_num_threads(1)
        self.generators = [torch.Generator() for _ in self.members]
        self._draw_from(self.generators)

    @staticmethod
    def wanted(model: torch.nn.Module, device: torch.device) -> bool:
        """Whether `model` trains this way: an ensemble (not wrapped for several processes) on a CPU."""
        return isinstance(model, SentimentEnsemble) and device.type == "cpu"

    def reseed(self) -> None:
        """Each member's masks for this epoch, from torch's default generator as seeded for it."""
        for generator in self.generators:
            generator.manual_seed(int(torch.randint(0, 1 << 62, ())))

    def step(self, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             loss: LossFn) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's forward pass and backward pass of its share of the mean loss; returns
        the mean loss (detached) and the logits (B, K)."""
        share = 1.0 / len(self.members)

        def one(member: SentimentLSTM) -> tuple[torch.Tensor, torch.Tensor]:
            with autocast(tokens.device, self.bf16):  # autocast is per thread: entered on each
                logits = member(tokens, lengths).float()
            own = loss(logits, targets) * share
            own.backward()
            return own.detach(), logits.detach()

        done = list(self.pool.map(one, self.members) if self.pool is not None else map(one, self.members))
        return torch.stack([own for own, _ in done]).sum(), torch.stack([logits for _, logits in done], dim=1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            torch.set_num_threads(self.threads)
        self._draw_from([None] * len(self.members))

    def _draw_from(self, generators: list[torch.Generator | None]) -> None:
        """Each member's dropout masks from its generator (None: torch's default one)."""
        for member, generator in zip(self.members, generators):
            for module in member.modules():
                if isinstance(module, Dropout):
                    module.generator = generator
