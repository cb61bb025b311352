"""Scorers: the ways a trained model turns encoded messages into logits, behind one interface.

Every scorer takes messages as one flat array of word ids and each message's length (>= 1), and
returns the network's logit for each, in input order. `make_scorer` is the one place that picks:

    the network       any device; padded batches of similar length
    the folded LSTM   on a CPU, for networks it can fold (folded.py)
    onnxruntime       the directory's model.onnx (export.py), with backend "onnx"

The parts after the network (parts.py) adjust what a scorer returns.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..data.batches import by_length, score_by_length
from ..data.store import CONFIG, read_json
from ..errors import StocksentError
from ..nets.device import resolve_device, to_device
from ..nets.folded import FoldedLSTM

BACKENDS = ("torch", "onnx")
ONNX_FILE, ONNX_INFO = "model.onnx", "onnx.json"  # the exported network (export.py) and its checksums
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
    """The folded network, nothing padded. It scores sets of every size, one message too: a
    message's logit is then the same bit for bit whatever it is scored with (folded.py), in a
    service's request, a file's chunk or a cluster's partition."""

    concurrent = True  # the fold's loop is one TorchScript call, which releases Python's lock

    def __init__(self, folded: FoldedLSTM):
        self.folded = folded

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        ids, starts = torch.from_numpy(flat), np.cumsum(lengths) - lengths
        out = np.empty(len(lengths), dtype=np.float32)
        for index in by_length(lengths, SCORE_BATCH):
            out[index] = self.folded.score(ids, torch.from_numpy(starts[index]), torch.from_numpy(lengths[index]))
        return out


class OnnxScorer:
    """Scores padded batches with onnxruntime: `scorer(tokens, lengths) -> logits` as numpy."""

    def __init__(self, folder: Path, threads: int = 0):
        try:
            import onnxruntime
        except ImportError:
            raise StocksentError("the onnx backend needs onnxruntime: pip install 'stocksent[onnx]'") from None
        data = _checked_onnx(folder)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
        feed = {"tokens": tokens.numpy(), "lengths": lengths.numpy()}
        return self.session.run(["logits"], feed)[0]


def _checked_onnx(folder: Path) -> bytes:
    path = folder / ONNX_FILE
    if not path.is_file():
        raise StocksentError(f"{folder}: no {ONNX_FILE}; make it with: stocksent export {folder} --onnx")
    info = read_json(folder / ONNX_INFO)
    data = path.read_bytes()
    if onnx_sha256(data) != info.get("onnx_sha256"):
        raise StocksentError(f"{path} is corrupted (its checksum does not match {ONNX_INFO})")
    if info.get("weights_sha256") != read_json(folder / CONFIG).get("weights_sha256"):
        raise StocksentError(f"{path} was exported from other weights; export it again")
    return data


def onnx_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise StocksentError(f"unknown backend {backend!r}; choose torch or onnx")


def make_scorer(model: nn.Module | None, device: str = "cpu", backend: str = "torch", onnx_folder: Path | None = None,
                threads: int = 0) -> Scorer:
    """The scorer for a network in memory (on `device`: cpu, cuda or auto), or with backend "onnx"
    for the ONNX file in `onnx_folder`."""
    check_backend(backend)
    if backend == "onnx":
        return PaddedScorer(OnnxScorer(onnx_folder, threads))
    model, target = model.eval(), resolve_device(device)
    folded = FoldedLSTM.fold(model) if target.type == "cpu" else None  # half the work on a CPU
    if folded is not None:
        return FoldedScorer(folded)
    return NetworkScorer((model.merged() or model).to(target))  # an ensemble: one LSTM call for all members
