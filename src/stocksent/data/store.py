"""The saved model directory: atomic writes, save and load, never unpickling anything.

    MODEL_DIR/
      config.json        model + preprocessing + data + training config, labels, format version,
                         sha256 of the weights
      vocab.json         the token list; index = position
      model.safetensors  the weights
      model.prev.safetensors  only while the weights are being replaced: the ones config.json
                         still names, so a crash between the two writes leaves a model to load
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

from ..config import FORMAT_VERSION, READABLE_VERSIONS, Config
from ..errors import StocksentError
from ..text.vocab import Vocab

WEIGHTS, CONFIG, VOCAB, METRICS, HISTORY = (
    "model.safetensors", "config.json", "vocab.json", "metrics.json", "history.json")
PREVIOUS_WEIGHTS = "model.prev.safetensors"


UMASK = os.umask(0)
os.umask(UMASK)


@contextmanager
def atomic_destination(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success fsync it and rename it over `dest`."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; a saved file gets the usual mode
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
    """Write the model directory, every file by atomic rename. config.json goes last and names
    the weights' checksum; until it is written, the weights it named before are kept as
    model.prev.safetensors, so a crash at any point leaves a directory that loads (the old
    model or the new one), never a mix."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors({k: v.detach().contiguous().cpu() for k, v in state.items()})
    _keep_previous(folder)
    write_bytes(folder / WEIGHTS, weights)
    write_json(folder / VOCAB, vocab.to_dict())
    write_json(folder / METRICS, metrics)
    write_json(folder / CONFIG, {
        "format_version": FORMAT_VERSION,
        "labels": [config.data.negative_label, config.data.positive_label],
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        **config.to_dict(),
    })
    (folder / PREVIOUS_WEIGHTS).unlink(missing_ok=True)


def _keep_previous(folder: Path) -> None:
    """Make model.prev.safetensors the weights config.json names now (a hard link, no copy).
    After an earlier crash those may already be the previous file, which then stays."""
    try:
        named = json.loads((folder / CONFIG).read_text(encoding="utf-8")).get("weights_sha256")
    except (OSError, ValueError, AttributeError):
        return  # no model here yet, or none that loads: nothing to keep
    current, previous = weights_file(folder, named), folder / PREVIOUS_WEIGHTS
    if current == previous or not current.exists():
        return
    tmp = previous.with_name(f".{previous.name}.link")
    tmp.unlink(missing_ok=True)
    os.link(current, tmp)
    os.replace(tmp, previous)
    _fsync_dir(folder)


def split_prefix(state: dict[str, torch.Tensor],
                 prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A saved state's tensors apart from those named `prefix`..., and those."""
    return ({k: v for k, v in state.items() if not k.startswith(prefix)},
            {k: v for k, v in state.items() if k.startswith(prefix)})


def load_model(folder: Path) -> tuple[Config, Vocab, dict[str, torch.Tensor]]:
    """Read config, vocabulary and weights back, checking format version and checksum."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StocksentError(f"model directory not found: {folder}")
    raw = read_json(folder / CONFIG)
    if not isinstance(raw, dict) or raw.get("format_version") not in READABLE_VERSIONS:
        found = raw.get("format_version") if isinstance(raw, dict) else None
        raise StocksentError(f"{folder}: model format version {found!r} is not supported "
                             f"(this stocksent reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    config = Config.from_dict(raw)
    vocab = Vocab.from_dict(read_json(folder / VOCAB))
    state = read_weights(weights_file(folder, raw.get("weights_sha256")), raw.get("weights_sha256"))
    if len(vocab) != config.model.vocab_size:
        raise StocksentError(f"{folder}: vocab.json has {len(vocab)} tokens but the model expects "
                             f"{config.model.vocab_size}")
    return config, vocab, state


def weights_file(folder: Path, expected_sha: str | None) -> Path:
    """model.safetensors, or the previous weights a crash mid-save left beside it if they are
    the ones config.json names."""
    previous = folder / PREVIOUS_WEIGHTS
    if previous.exists() and _sha256(folder / WEIGHTS) != expected_sha and _sha256(previous) == expected_sha:
        return previous
    return folder / WEIGHTS


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def read_verified(path: Path, expected_sha: str | None, missing: str, corrupted: str) -> bytes:
    """The bytes of a file whose sha256 must be `expected_sha`; else a StocksentError saying
    `missing` or `corrupted`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StocksentError(missing) from None
    if hashlib.sha256(data).hexdigest() != expected_sha:
        raise StocksentError(corrupted)
    return data


def tensors_of(data: bytes, where: str) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(data)
    except SafetensorError as exc:
        raise StocksentError(f"{where}: not a valid safetensors file ({exc})") from None


def read_weights(path: Path, expected_sha: str | None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose sha256 must be `expected_sha`."""
    data = read_verified(path, expected_sha, f"{path.parent}: no {path.name}; the model was not saved completely",
                         f"{path}: checksum does not match config.json (truncated, corrupted or from another run)")
    return tensors_of(data, str(path))


def read_metrics(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METRICS
    return read_json(path) if path.exists() else {}
