"""The saved model directory: atomic writes, save and load, never unpickling anything.

    MODEL_DIR/
      config.json        model + preprocessing + data + training config, labels, format version,
                         sha256 of the weights
      vocab.json         the token list; index = position
      model.safetensors  the weights
      metrics.json       validation and test metrics
      history.json       one row per epoch (written by training)
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .config import FORMAT_VERSION, Config
from .errors import StocksentError
from .vocab import Vocab

WEIGHTS, CONFIG, VOCAB, METRICS, HISTORY = (
    "model.safetensors", "config.json", "vocab.json", "metrics.json", "history.json")


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_destination(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success fsync it and rename it over `dest`."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a saved file gets the usual mode
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(dest: Path, data: bytes) -> None:
    with atomic_destination(dest) as tmp:
        tmp.write_bytes(data)


def write_json(dest: Path, obj: Any) -> None:
    write_bytes(dest, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StocksentError(f"{path.parent}: not a stocksent model directory (no {path.name})") from None
    except (OSError, ValueError) as exc:
        raise StocksentError(f"{path}: unreadable ({exc})") from None


def save_model(folder: Path, config: Config, vocab: Vocab, state: dict[str, torch.Tensor],
               metrics: dict[str, Any]) -> None:
    """Write the model directory. config.json goes last and names the weights' checksum,
    so a crash part-way leaves a directory that refuses to load rather than a wrong model."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors({k: v.detach().contiguous().cpu() for k, v in state.items()})
    write_bytes(folder / WEIGHTS, weights)
    write_json(folder / VOCAB, vocab.to_dict())
    write_json(folder / METRICS, metrics)
    write_json(folder / CONFIG, {
        "format_version": FORMAT_VERSION,
        "labels": [config.data.negative_label, config.data.positive_label],
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        **config.to_dict(),
    })


def load_model(folder: Path) -> tuple[Config, Vocab, dict[str, torch.Tensor]]:
    """Read config, vocabulary and weights back, checking format version and checksum."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StocksentError(f"model directory not found: {folder}")
    raw = read_json(folder / CONFIG)
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        found = raw.get("format_version") if isinstance(raw, dict) else None
        raise StocksentError(f"{folder}: model format version {found!r} is not supported "
                             f"(this stocksent reads version {FORMAT_VERSION})")
    config = Config.from_dict(raw)
    vocab = Vocab.from_dict(read_json(folder / VOCAB))
    state = _read_weights(folder / WEIGHTS, raw.get("weights_sha256"))
    if len(vocab) != config.model.vocab_size:
        raise StocksentError(f"{folder}: vocab.json has {len(vocab)} tokens but the model expects "
                             f"{config.model.vocab_size}")
    return config, vocab, state


def _read_weights(path: Path, expected_sha: str | None) -> dict[str, torch.Tensor]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StocksentError(f"{path.parent}: no {path.name}; the model was not saved completely") from None
    if hashlib.sha256(data).hexdigest() != expected_sha:
        raise StocksentError(f"{path}: checksum does not match config.json (truncated, corrupted "
                             "or from another run)")
    try:
        return load_safetensors(data)
    except SafetensorError as exc:
        raise StocksentError(f"{path}: not a valid safetensors file ({exc})") from None


def read_metrics(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METRICS
    return read_json(path) if path.exists() else {}
