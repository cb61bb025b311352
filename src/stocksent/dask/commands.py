"""The command line's jobs on Dask: an archive of message files in; a folder of scored Parquet
parts, or one index file, out. Each appears whole or not at all."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..classifier import SentimentClassifier
from ..data.table import open_table
from ..errors import StocksentError
from ..scoring.index import Columns, Estimator, check_not_input, index_rows
from .archive import output_folder, output_types, read_archive, write_partition
from .cluster import computed
from .frames import index_sums, predict
from .model import ModelFiles

Progress = Callable[[int, int], None]  # (parts done, parts in all)


def predict_archive(client: Any, sources: Sequence[Path], clf: SentimentClassifier, out: Path,
                    text_column: str = "message", batch_size: int = 8192, progress: Progress | None = None,
                    device: str = "auto") -> int:
    """Score the files into out/part-NNNNN.parquet, a part per partition in input order: every
    column of the input, then label and prob_<positive>. Returns the messages scored."""
    from dask import delayed

    out = Path(out)
    for source in sources:
        if out.resolve() in (Path(source).resolve(), *Path(source).resolve().parents):
            raise StocksentError(f"{out}: the output would replace an input; write elsewhere")
    archive = read_archive(sources, [text_column])
    scored = predict(archive.frame, ModelFiles.of(clf), text_column, batch_size, device, str(sources[0]))
    types = output_types(archive.types, list(scored.columns[-2:]))
    with output_folder(out) as folder:
        parts = [delayed(write_partition, pure=True)(part, str(folder), number, types)
                 for number, part in enumerate(scored.to_delayed())]
        return computed(client, parts, delayed(sum, pure=True)(parts), _counted(progress, len(parts)))


def index_archive(client: Any, sources: Sequence[Path], clf: SentimentClassifier, out: Path, freq: str,
                  columns: Columns, estimator: Estimator, progress: Progress | None = None, batch_size: int = 8192,
                  device: str = "auto") -> dict[str, list]:
    """Index the files into `out` (CSV, JSONL or Parquet by its extension); returns the rows."""
    check_not_input(out, sources)
    archive = read_archive(sources, columns.required(), [columns.label])
    parts, total = index_sums(archive.frame, clf, freq, columns, batch_size, device)
    rows = index_rows(computed(client, parts, total, _counted(progress, len(parts))), estimator)
    with open_table(out, list(rows)) as table:
        table.write(rows)
    return rows


def _counted(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = [0]

    def step(count: int) -> None:
        done[0] += count
        progress(done[0], total)

    return step

