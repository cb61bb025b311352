"""Where Dask jobs run: a scheduler the user already runs (its address), or a LocalCluster of N
worker processes of one thread each on this machine; and a job's partitions followed as the
scheduler reports them done.

A worker that dies mid-job (killed, out of memory) costs a retry: the scheduler runs its tasks
again elsewhere, and they give the same results (the partitions are read, scored and written
again). A task that raises fails the job with its error, which the command prints in one line.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import StocksentError
from ..scoring.stream import MAX_WORKERS

LOCAL = "local:"
CONNECT_SECONDS = 10
# Dask's nanny starts workers with glibc's malloc trimming at 64 KiB, which also fixes the size
# from which malloc maps memory afresh at 128 KiB: scoring, which allocates many arrays of that
# size, is then much slower (bench/dask_scale.py times both). The workers of local:N go without it.
UNTRIMMED = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def check_address(address: str) -> None:
    """One line unless `address` is local:N or a scheduler's address (tcp://host:port, ...)."""
    if address.startswith(LOCAL):
        count = address[len(LOCAL):]
        if not count.isdigit() or not 1 <= int(count) <= MAX_WORKERS:
            raise StocksentError(f"--dask {address}: give local:N with N from 1 to {MAX_WORKERS} worker processes")
    elif "://" not in address and ":" not in address:
        raise StocksentError(f"--dask {address}: give a scheduler's address (tcp://host:8786) or local:N")


@contextmanager
def connected(address: str) -> Iterator[Any]:
    """A dask.distributed Client of the scheduler at `address`, or of a new LocalCluster of N
    single-threaded workers for local:N (closed with the block)."""
    check_address(address)
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise StocksentError("--dask needs Dask: pip install 'stocksent[dask]'") from None
    if address.startswith(LOCAL):
        with dask.config.set({UNTRIMMED: None}), LocalCluster(
                n_workers=int(address[len(LOCAL):]), threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise StocksentError(f"cannot reach the Dask scheduler at {address}: {str(exc).splitlines()[0]}") from None
    with client:
        yield client


def computed(client: Any, parts: Sequence[Any], total: Any, progress: Callable[[int], None] | None = None) -> Any:
    """`total` (a Delayed computed from `parts`), computed on the client's cluster; progress(1)
    hears of each part done. The first part to fail raises its error."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    with warnings.catch_warnings():  # the graph carries the model's files on purpose: sent once, and recomputable
        warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
        whole, *each = client.compute([total, *parts])
    # Each part's future is dropped once counted, so that its result is freed once the total has
    # used it. On an error the rest are left to closing the client, which drops them: cancelling
    # them here trips an assertion in the scheduler when parts are also inputs of the total.
    done = as_completed(each)
    del each
    try:
        for future in done:
            if future.status == "error":
                future.result()  # raises the task's own exception
            if progress is not None:
                progress(1)
        return whole.result()
    except KilledWorker as exc:
        raise StocksentError(f"a task died with every worker that ran it (out of memory?): {exc.task}") from None
