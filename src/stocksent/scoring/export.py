"""ONNX: write a saved model's network as model.onnx, which scorer.OnnxScorer runs with onnxruntime.

The exported graph takes right-padded `tokens` (batch, time) int64 and `lengths` (batch,) int64
and returns `logits` (batch,); batch and time are dynamic. onnxruntime is an optional extra
(`pip install 'stocksent[onnx]'`); nothing else in stocksent needs it.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..data.store import CONFIG, atomic_destination, read_json, write_json
from .predictor import read_model
from .scorer import ONNX_FILE, ONNX_INFO, onnx_sha256


def export_onnx(folder: Path) -> Path:
    """Export the model in `folder` to folder/model.onnx (atomically), beside onnx.json that ties
    it to the weights it came from."""
    # The network alone: the parts after it (parts.py) run in numpy beside onnxruntime.
    model = read_model(folder)[2].eval()
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
        onnx_sha = onnx_sha256(tmp.read_bytes())
    write_json(folder / ONNX_INFO, {"onnx_sha256": onnx_sha,
                                    "weights_sha256": read_json(folder / CONFIG)["weights_sha256"]})
    return folder / ONNX_FILE


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
