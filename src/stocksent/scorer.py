"""Scorers: the ways a trained model turns encoded messages into logits, behind one interface.

Every scorer takes messages as one flat array of word ids and each message's length (>= 1), and
returns one logit per message in input order. `make_scorer` is the one place that picks:

    the network       any device; padded batches of similar length
    the folded LSTM   on a CPU, for networks it can fold (folded.py); the network for a few messages
    onnxruntime       the directory's model.onnx (export.py)

and, when the model has an n-gram part (ngrams.py), blends that part's logits into the chosen one's.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from .batches import by_length, score_by_length
from .device import resolve_device, to_device
from .folded import FoldedLSTM
from .model import SentimentEnsemble
from .ngrams import NgramModel

# The folded network runs a dozen small ops per word; below this many messages the network's one
# fused LSTM call is quicker (bench/suite.py times both).
FOLD_FROM = 16
# Messages per scoring batch; bench/suite.py measures the batch sizes around it.
SCORE_BATCH = 1024


class Scorer(Protocol):
    # True when scoring runs outside Python's lock, so that threads scoring chunks side by side gain.
    concurrent: bool

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(N,) float32 logits of N messages: message i is the next lengths[i] ids of `flat`."""
        ...


def split_flat(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """The flat ids as one array (a view) per message."""
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


class PaddedScorer:
    """Any `score(tokens (B, T), lengths (B,)) -> (B,) logits`, in padded batches of similar length."""

    concurrent = False

    def __init__(self, score: Callable[[torch.Tensor, torch.Tensor], np.ndarray], batch_size: int = SCORE_BATCH):
        self.score, self.batch_size = score, batch_size

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return score_by_length(self.score, split_flat(flat, lengths), self.batch_size)


class NetworkScorer(PaddedScorer):
    """The network itself, on whatever device it sits, in padded batches of similar length."""

    def __init__(self, model: nn.Module, batch_size: int = 512):
        self.model, self.device = model.eval(), next(model.parameters()).device
        super().__init__(self._score, batch_size)

    @torch.inference_mode()
    def _score(self, tokens: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
        return self.model(*to_device(self.device, tokens, lengths)).float().cpu().numpy()


class FoldedScorer:
    """The folded network, nothing padded; a handful of messages go through the network."""

    concurrent = True  # the fold's loop is one TorchScript call, which releases Python's lock

    def __init__(self, folded: FoldedLSTM, network: NetworkScorer):
        self.folded, self.network = folded, network

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if len(lengths) < FOLD_FROM:
            return self.network.logits(flat, lengths)
        ids, starts = torch.from_numpy(flat), np.cumsum(lengths) - lengths
        out = np.empty(len(lengths), dtype=np.float32)
        for index in by_length(lengths, SCORE_BATCH):
            out[index] = self.folded.score(ids, torch.from_numpy(starts[index]), torch.from_numpy(lengths[index]))
        return out


class BlendedScorer:
    """A scorer's logits blended with an n-gram part's (ngrams.py), which numpy computes."""

    def __init__(self, network: Scorer, ngrams: NgramModel):
        self.network, self.ngrams = network, ngrams
        self.concurrent = network.concurrent

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.ngrams.blend(self.network.logits(flat, lengths), flat, lengths)


def make_scorer(model: nn.Module | None, device: str = "cpu", onnx_folder: Path | None = None,
                threads: int = 0, ngrams: NgramModel | None = None) -> Scorer:
    """The scorer for a network in memory (on `device`: cpu, cuda or auto), or for the ONNX file
    in `onnx_folder` when one is named; with an n-gram part, its logits blended in."""
    scorer = _network_scorer(model, device, onnx_folder, threads)
    return BlendedScorer(scorer, ngrams) if ngrams is not None else scorer


def _network_scorer(model: nn.Module | None, device: str, onnx_folder: Path | None, threads: int) -> Scorer:
    if onnx_folder is not None:
        from .export import OnnxScorer

        return PaddedScorer(OnnxScorer(onnx_folder, threads))
    model, target = model.eval(), resolve_device(device)
    folded = FoldedLSTM.fold(model) if target.type == "cpu" else None  # half the work on a CPU
    if isinstance(model, SentimentEnsemble):  # one wide network: one LSTM call for all members
        model = model.merged() or model
    network = NetworkScorer(model.to(target))
    return FoldedScorer(folded, network) if folded is not None else network
