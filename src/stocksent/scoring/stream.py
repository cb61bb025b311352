"""Scoring a stream of messages in chunks: memory bounded by the chunk size, results in input
order, on this process or on worker processes (pool.py), into a file or back to the caller."""
from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..data.table import check_layout, open_table, parquet_types, read_columns, table_columns
from ..errors import StocksentError, check_range
from ..text.labels import texts_or_empty
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
    return scored_parts(predictor, chunks(texts, batch_size), workers, work)


def scored_parts(predictor: Predictor, parts: Iterable[list[str]], workers: int = 1,
                 work: Callable[[Predictor, list[str]], Result] = probabilities) -> Iterator[tuple[int, Result]]:
    """scored_chunks of chunks the caller cut."""
    check_range("workers", workers, 1, MAX_WORKERS)
    sizes: list[int] = []
    parts = _counted(iter(parts), sizes)
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


def predict_file(predictor: Predictor, sources: Path | Sequence[Path], dst: Path, text_column: str = "message",
                 batch_size: int = 8192, workers: int = 1,
                 progress: Callable[[int], None] | None = None) -> int:
    """Score the text column of `sources` (one file or several with the same columns) into `dst`
    (its format by its extension): every column of the input, then each message's label and
    probability of the positive label. `dst` is replaced only once every message is scored.
    `progress(n)` hears of each chunk written."""
    sources = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(src) for src in sources]
    check_range("batch_size", batch_size, 1, MAX_BATCH)
    if any(src.resolve() == Path(dst).resolve() for src in sources):
        raise StocksentError(f"{dst}: the output would overwrite the input; write elsewhere")
    names = table_columns(sources[0]) or [text_column]
    added = scored_columns(predictor.labels, names, sources[0])
    pending: deque = deque()  # each chunk's columns, until its scores come back
    parts = _column_chunks(sources, names, text_column, batch_size, pending)
    scored = scored_parts(predictor, parts, workers)
    types = parquet_types(sources, names)
    written = 0
    # closing: an error while writing stops the workers now, not when the generator is collected
    with contextlib.closing(scored), open_table(dst, [*names, *added], types) as table:
        for size, (_, prob) in scored:
            table.write({**pending.popleft(), **labelled(predictor.labels, prob, added)})
            written += size
            if progress is not None:
                progress(size)
    return written


def scored_columns(labels: tuple[str, str], names: Sequence[str], where: Any) -> list[str]:
    """The columns scoring adds (label, prob_<positive>); one line if the input has them."""
    added = ["label", f"prob_{labels[1]}"]
    taken = [name for name in added if name in names]
    if taken:
        raise StocksentError(f"{where} already has column(s) {', '.join(map(repr, taken))}, which the scores "
                             f"would replace; rename them first")
    return added


def labelled(labels: tuple[str, str], prob: np.ndarray, added: Sequence[str]) -> dict[str, Any]:
    """The added columns of scored messages: label, and probability as float64 (exactly the
    float32 the model gives)."""
    return {added[0]: np.where(prob >= 0.5, labels[1], labels[0]), added[1]: np.asarray(prob, dtype=np.float64)}


def _column_chunks(sources: list[Path], names: list[str], text_column: str, size: int,
                   pending: deque) -> Iterator[list[str]]:
    """Each chunk's texts, its columns queued in `pending`; every file must have `names`."""
    for src in sources:
        check_layout(src, names, sources[0])
        for chunk in read_columns(src, [text_column], names, size):
            pending.append({name: chunk[name] for name in names})
            yield texts_or_empty(chunk[text_column])
