"""Scoring on several processes, for large inputs: each worker loads the model once, runs one
torch thread and takes whole chunks of messages, and the results come back in input order.

In one process the normaliser is a single Python thread beside torch's, so one process cannot
keep every core busy; workers of one thread each can. Workers are started fresh ("spawn"), not
forked from a process whose torch thread pool is already running, and at most two chunks per
worker are in flight, so memory stays bounded however long the input.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

from .classifier import SentimentClassifier

Result = TypeVar("Result")

_worker: dict[str, Any] = {}  # per worker process: its classifier, or the error that loading it raised


def map_chunks(load: Callable[[], SentimentClassifier], work: Callable[[SentimentClassifier, list[str]], Result],
               chunks: Iterable[list[str]], workers: int) -> Iterator[Result]:
    """Yield work(classifier, chunk) for each chunk, in order, computed by `workers` processes that
    each build their classifier with load(). `load` and `work` must be picklable (module-level
    functions or functools.partial of them)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start, initargs=(load,)) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_run, (work, chunk)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _start(load: Callable[[], SentimentClassifier]) -> None:
    torch.set_num_threads(1)
    try:
        _worker["classifier"] = load()
    except Exception as exc:  # raised with the first chunk: an initializer that fails makes Pool respawn it forever
        _worker["error"] = exc


def _run(work: Callable[[SentimentClassifier, list[str]], Result], chunk: list[str]) -> Result:
    if "error" in _worker:
        raise _worker["error"]
    return work(_worker["classifier"], chunk)
