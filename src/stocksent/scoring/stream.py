"""Scoring a stream of messages in chunks: memory bounded by the chunk size, results in input
order, on this process or on worker processes (pool.py), into a file or back to the caller."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..data.dataset import read_texts
from ..data.table import open_table
from ..errors import StocksentError, check_range
from .explain import explain
from .metrics import sigmoid
from .pool import map_chunks
from .predictor import Predictor

Result = TypeVar("Result")
MAX_BATCH = 1_000_000  # messages held at once: memory grows with it
MAX_WORKERS = 64  # more processes than this is a typo, not a machine


def chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of `size` texts (the last one shorter)."""
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def probabilities(predictor: Predictor, texts: list[str]) -> tuple[list[str], np.ndarray]:
    """A chunk and its probabilities of the positive label."""
    return texts, sigmoid(predictor.logits(texts))


def explained(predictor: Predictor, texts: list[str], top: int = 0) -> tuple[list[str], np.ndarray, list | None]:
    """A chunk, its probabilities of the positive label, and each message's `top` tokens that
    moved its score most (explain.py; None when top is 0)."""
    why = [explain(predictor, text, top) for text in texts] if top else None
    return texts, sigmoid(predictor.logits(texts)), why


def scored_chunks(predictor: Predictor, texts: Iterable[str], batch_size: int = 8192, workers: int = 1,
                  work: Callable[[Predictor, list[str]], Result] = probabilities) -> Iterator[tuple[int, Result]]:
    """(chunk size, work(predictor, chunk)) for each chunk of `texts`, in input order. With
    workers > 1, each worker process loads the model once and runs `work` (a module-level
    function or a functools.partial of one, so that it can be sent to them)."""
    check_range("batch_size", batch_size, 1, MAX_BATCH)
    check_range("workers", workers, 1, MAX_WORKERS)
    sizes: list[int] = []
    parts = _counted(chunks(texts, batch_size), sizes)
    if workers == 1:
        results: Iterator[Any] = (work(predictor, chunk) for chunk in parts)
    else:
        results = map_chunks(predictor.loader(), work, parts, workers)
    try:
        for number, result in enumerate(results):
            yield sizes[number], result
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # stops the workers when the caller stops reading early


def _counted(parts: Iterator[list[str]], sizes: list[int]) -> Iterator[list[str]]:
    for chunk in parts:
        sizes.append(len(chunk))
        yield chunk


def predict_file(predictor: Predictor, src: Path, dst: Path, text_column: str = "message",
                 batch_size: int = 8192, workers: int = 1,
                 progress: Callable[[int], None] | None = None) -> int:
    """Score `src`'s text column into `dst` (its format by its extension); `dst` is replaced
    only once every message is scored. `progress(n)` hears of each chunk written."""
    if src.resolve() == dst.resolve():
        raise StocksentError(f"{dst}: the output would overwrite the input; write elsewhere")
    negative, positive = predictor.labels
    written = 0
    scored = scored_chunks(predictor, read_texts(src, text_column), batch_size, workers)
    # closing: an error while writing stops the workers now, not when the generator is collected
    with contextlib.closing(scored), open_table(dst, ["text", "label", f"prob_{positive}"]) as table:
        for size, (texts, prob) in scored:
            table.write({"text": texts, "label": np.where(prob >= 0.5, positive, negative).tolist(),
                         f"prob_{positive}": prob.tolist()})
            written += size
            if progress is not None:
                progress(size)
    return written

