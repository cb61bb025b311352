"""ONNX: write a saved model's network as model.onnx, and score with it through onnxruntime.

The exported graph takes right-padded `tokens` (batch, time) int64 and `lengths` (batch,) int64
and returns `logits` (batch,); batch and time are dynamic. onnxruntime is an optional extra
(`pip install 'stocksent[onnx]'`); nothing else in stocksent needs it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import StocksentError
from .model import build_model, load_weights
from .ngrams import split_state
from .priors import split_priors
from .store import CONFIG, atomic_destination, load_model, read_json, write_json

ONNX_FILE, ONNX_INFO = "model.onnx", "onnx.json"


def export_onnx(folder: Path) -> Path:
    """Export the model in `folder` to folder/model.onnx (atomically), beside onnx.json that ties
    it to the weights it came from."""
    config, _, state = load_model(folder)
    # The network alone: an n-gram part and ticker priors are added by numpy beside onnxruntime.
    network = split_state(split_priors(state, str(folder))[0])[0]
    model = load_weights(build_model(config.model), network, str(folder)).eval()
    example = (torch.ones(3, 5, dtype=torch.int64), torch.tensor([5, 3, 1]))
    with atomic_destination(folder / ONNX_FILE) as tmp, _quiet():
        # The TorchScript exporter, chosen explicitly (dynamo=False): it traces each call afresh,
        # where the dynamo exporter, run twice in one process, fixed the second model's time axis
        # at the example's length. The LSTM layers export as ONNX LSTM nodes and the last-token
        # gather as a GatherElements, with no PackedSequence anywhere.
        torch.onnx.export(model, example, str(tmp), dynamo=False, opset_version=17,
                          input_names=["tokens", "lengths"], output_names=["logits"],
                          dynamic_axes={"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                                        "logits": {0: "batch"}})
        onnx_sha = _sha256(tmp.read_bytes())
    write_json(folder / ONNX_INFO, {"onnx_sha256": onnx_sha,
                                    "weights_sha256": read_json(folder / CONFIG)["weights_sha256"]})
    return folder / ONNX_FILE


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
    if _sha256(data) != info.get("onnx_sha256"):
        raise StocksentError(f"{path} is corrupted (its checksum does not match {ONNX_INFO})")
    if info.get("weights_sha256") != read_json(folder / CONFIG).get("weights_sha256"):
        raise StocksentError(f"{path} was exported from other weights; export it again")
    return data


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporter narrates each stage and warns about internals a user cannot act on.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
