"""Scoring and indexing a Dask DataFrame, partition by partition on the workers, each with the
model it loaded once (model.py).

A message's probability does not depend on what else it is scored with, so the partitions'
probabilities are the single process's bit for bit. The index adds up per-partition sums
(CellSums, integers) in a tree of tasks; they equal one pass's sums exactly, so the index is the
single process's too.
"""
from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..classifier import SentimentClassifier
from ..config import Config
from ..data.store import CONFIG
from ..errors import StocksentError, check_range
from ..scoring.index import CellSums, Columns, cell_sums, check_freq, frame_chunks, index_rows
from ..scoring.stream import MAX_BATCH, chunks, labelled, probabilities, scored_columns
from ..text.labels import texts_or_empty
from .archive import FIRST_ROW, SOURCE
from .model import ModelFiles, loaded

Model = str | Path | SentimentClassifier | ModelFiles


def predict(frame: Any, model: Model, text_column: str = "message", batch_size: int = 8192,
            device: str = "auto", where: str = "the frame") -> Any:
    """`frame` (a Dask DataFrame) with two more columns: each message's label and its
    probability of the positive label (prob_<positive>). Lazy, as Dask is: compute it, or write
    it with to_parquet. `model`: a model directory, a fitted classifier, or ModelFiles; `device`:
    the workers' (cpu, cuda, or auto: a GPU where a worker has one)."""
    check_range("batch_size", batch_size, 1, MAX_BATCH)
    files = _files(model)
    labels = _labels(files)
    if text_column not in frame.columns:
        raise StocksentError(f"{where} has no column {text_column!r} (columns: {', '.join(map(str, frame.columns))})")
    added = scored_columns(labels, list(frame.columns), where)
    meta = frame._meta.assign(**{added[0]: pd.Series(dtype=str), added[1]: pd.Series(dtype=np.float64)})
    return frame.map_partitions(_scored, _shared(files), text_column, batch_size, added, device, meta=meta)


def index(frame: Any, model: Model, freq: str = "day", text_column: str = "message", time_column: str = "created_at",
          ticker_column: str | None = None, method: str | None = None, level: float = 0.9,
          calibration: tuple[Any, Any] | None = None) -> pd.DataFrame:
    """SentimentClassifier.index of a Dask DataFrame: the same rows, from sums the workers add
    up. Computed now, on the Dask client in use (or Dask's default scheduler)."""
    import dask

    clf = model if isinstance(model, SentimentClassifier) else SentimentClassifier.load(_folder(model))
    estimator = clf.index_estimator(method, level, calibration)
    columns = Columns(text_column, time_column, ticker_column, clf.config.data.label_column)
    _, total = index_sums(frame, clf, freq, columns)
    return pd.DataFrame(index_rows(dask.compute(total)[0], estimator))


def index_sums(frame: Any, model: Model, freq: str, columns: Columns, batch_size: int = 8192,
               device: str = "auto") -> tuple[list, Any]:
    """Per partition, the CellSums of its messages (Dask Delayed), and their total."""
    from dask import delayed

    check_freq(freq)
    check_range("batch_size", batch_size, 1, MAX_BATCH)
    files = _files(model)
    shared, labels = _shared(files), _labels(files)
    parts = [delayed(_summed, pure=True)(part, shared, freq, columns, labels, number, batch_size, device)
             for number, part in enumerate(frame.to_delayed())]
    level = parts
    while len(level) > 1:  # a tree: each task adds two, in input order
        level = [delayed(operator.add, pure=True)(*level[i:i + 2]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return parts, level[0] if level else delayed(CellSums, pure=True)()


def _scored(part: pd.DataFrame, files: ModelFiles, text_column: str, batch_size: int, added: list[str],
            device: str) -> pd.DataFrame:
    predictor = loaded(files, device)
    texts = texts_or_empty(part[text_column].tolist())
    scores = [probabilities(predictor, chunk)[1] for chunk in chunks(texts, batch_size)]
    prob = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    return part.assign(**labelled(predictor.labels, prob, added))


def _summed(part: pd.DataFrame, files: ModelFiles, freq: str, columns: Columns, labels: tuple[str, str],
            number: int, batch_size: int, device: str) -> CellSums:
    where = part.attrs.get(SOURCE, f"partition {number}")
    rows = frame_chunks(part, columns, labels, batch_size, where, part.attrs.get(FIRST_ROW, 1))
    return cell_sums(loaded(files, device), rows, freq)


def _files(model: Model) -> ModelFiles:
    return model if isinstance(model, ModelFiles) else ModelFiles.of(model)


def _folder(model: Model) -> Path:
    if isinstance(model, ModelFiles):
        raise StocksentError("index needs the model directory or a classifier, for its calibration set")
    return Path(model)


def _labels(files: ModelFiles) -> tuple[str, str]:
    data = Config.from_dict(json.loads(dict(files.files)[CONFIG])).data
    return data.negative_label, data.positive_label


def _shared(files: ModelFiles) -> Any:
    """The files as one task of the graph: each worker fetches them once, whatever its partitions."""
    from dask import delayed

    return delayed(files, pure=True, name=f"stocksent-model-{files.digest[:16]}")
