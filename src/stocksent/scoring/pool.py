"""Scoring on several processes, for large inputs: each worker loads the model once, runs one
torch thread and takes whole chunks of messages, and the results come back in input order.

In one process, reading the input, normalising and writing the output all run on one Python
thread (the model's scoring threads overlap only the scoring with it); workers of one
thread each run all of it on every core. Workers are started fresh ("spawn"), not
forked from a process whose torch thread pool is already running, and at most two chunks per
worker are in flight, so memory stays bounded however long the input.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

Result = TypeVar("Result")
Worker = Any  # what load() builds in each worker (a Predictor) and `work` is handed

_worker: dict[str, Any] = {}  # per worker process: its model, or the error that loading it raised


def map_chunks(load: Callable[[], Worker], work: Callable[[Worker, list[str]], Result],
               chunks: Iterable[list[str]], workers: int) -> Iterator[Result]:
    """Yield work(model, chunk) for each chunk, in order, computed by `workers` processes that
    each build their model with load(). `load` and `work` must be picklable (module-level
    functions or functools.partial of them)."""
    context = multiprocessing.get_context("spawn")
    with _terminate_as_exit(), context.Pool(workers, initializer=_start, initargs=(load,)) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_run, (work, chunk)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so that the pool is torn down with its workers; killed
    outright, the parent would leave them to fail, traceback and all, writing to a closed pipe."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _start(load: Callable[[], Worker]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    torch.set_num_threads(1)
    try:
        _worker["model"] = load()
    except Exception as exc:  # raised with the first chunk: an initializer that fails makes Pool respawn it forever
        _worker["error"] = exc


def _run(work: Callable[[Worker, list[str]], Result], chunk: list[str]) -> Result:
    if "error" in _worker:
        raise _worker["error"]
    return work(_worker["model"], chunk)
