"""Data files: where the data set lives, fetching it, and reading labelled messages."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import DataConfig
from .errors import StocksentError
from .store import atomic_destination

DATA_FILENAME = "StockTwits_SPY_Sentiment_2017.gz"
DATA_SHA256 = "2764ef980af1af85d2c4d180ced1ce54cf20186b7a07c301304dbd72a5a4eeef"
DATA_URL = "https://github.com/garretthoffman/lstm-oreilly/raw/master/data/" + DATA_FILENAME

# A single message may legitimately be long, but not larger than this.
csv.field_size_limit(64 * 1024 * 1024)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stocksent"


def _shared_candidates() -> list[Path]:
    # ../shared/data beside the project checkout (src/stocksent/data.py -> checkout root),
    # and beside the working directory for an installed package run from the checkout.
    checkout = Path(__file__).resolve().parents[2]
    return [checkout.parent / "shared" / "data" / DATA_FILENAME,
            Path.cwd().resolve().parent / "shared" / "data" / DATA_FILENAME]


def find_data(explicit: str | os.PathLike | None = None) -> Path:
    """Locate the data: --data, then $STOCKSENT_DATA, the user cache, then ../shared/data."""
    if explicit:
        return _existing(Path(explicit), "--data")
    if os.environ.get("STOCKSENT_DATA"):
        return _existing(Path(os.environ["STOCKSENT_DATA"]), "STOCKSENT_DATA")
    for candidate in [cache_dir() / DATA_FILENAME, *_shared_candidates()]:
        if candidate.is_file():
            return candidate
    raise StocksentError("no data found: run `stocksent data fetch`, or pass --data PATH "
                         "or set STOCKSENT_DATA")


def data_for_model(explicit: str | os.PathLike | None, dataset: dict) -> Path:
    """`explicit` if given, else the file a model was trained on (its metrics' "dataset") if it
    is still there, else the usual search."""
    source = dataset.get("source")
    if not explicit and source and Path(source).is_file():
        return Path(source)
    return find_data(explicit)


def _existing(path: Path, where: str) -> Path:
    if not path.exists():
        raise StocksentError(f"data file not found ({where}): {path}")
    if not path.is_file():
        raise StocksentError(f"data path is not a file ({where}): {path}")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: str | None = None, dest_dir: Path | None = None, url: str = DATA_URL) -> Path:
    """Download (or copy from `source`) the data set into the cache, checking its sha256."""
    dest = (dest_dir or cache_dir()) / DATA_FILENAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_destination(dest) as tmp:
        if source:
            _copy_local(Path(source), tmp)
        else:
            _download(url, tmp)
        got = file_sha256(tmp)
        if got != DATA_SHA256:
            raise StocksentError(f"checksum mismatch: expected sha256 {DATA_SHA256}, got {got}; "
                                 "nothing was saved")
    return dest


def _copy_local(source: Path, tmp: Path) -> None:
    _existing(source, "--from")
    try:
        shutil.copyfile(source, tmp)
    except OSError as exc:
        raise StocksentError(f"cannot copy {source}: {exc.strerror}") from None


def _download(url: str, tmp: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StocksentError(f"download failed from {url}: {reason}") from None


def read_messages(path: Path, cfg: DataConfig) -> tuple[list[str], list[int]]:
    """Read (texts, labels) from a CSV, CSV.gz or JSONL(.gz) file; labels are 0 negative, 1 positive."""
    with _readable(path):
        rows = list(_rows(path))
    return _labelled(rows, path, cfg)


def read_texts(path: Path, text_column: str) -> Iterator[str]:
    """Yield the text column of a CSV or JSONL file, for scoring unlabelled messages."""
    with _readable(path):
        for number, row in enumerate(_rows(path), start=1):
            if text_column not in row:
                raise StocksentError(f"{path}: row {number} has no column {text_column!r} "
                                     f"(columns: {', '.join(map(str, row)) or 'none'})")
            yield "" if row[text_column] is None else str(row[text_column])


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn the ways a data file can be unreadable into one-line errors."""
    try:
        yield
    except FileNotFoundError:
        raise StocksentError(f"data file not found: {path}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise StocksentError(f"{path}: not a valid gzip file (corrupt or truncated)") from None
    except UnicodeDecodeError as exc:
        raise StocksentError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise StocksentError(f"{path}: malformed CSV: {exc}") from None
    except OSError as exc:
        raise StocksentError(f"cannot read {path}: {exc.strerror or exc}") from None


# Python's csv refuses fields over 128 KiB; a scraped message can be longer, and the tokenizer
# cuts it to max_tokens anyway.
csv.field_size_limit(64 * 1024 * 1024)


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gzipped else open(path, "rb")
    # utf-8-sig drops a byte-order mark; newline="" lets csv handle quoted newlines.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _is_jsonl(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".json", ".ndjson"))


def _rows(path: Path) -> Iterator[dict]:
    with _open_text(path) as f:
        if _is_jsonl(path):
            yield from _json_rows(f, path)
        else:
            # strict: a quote left open is an error, not a field that swallows the rest of the file.
            reader = csv.DictReader(f, strict=True)
            try:
                if reader.fieldnames is None:
                    raise StocksentError(f"{path}: the file is empty")
                yield from reader
            except csv.Error as exc:
                raise StocksentError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None


def _json_rows(f: io.TextIOBase, path: Path) -> Iterator[dict]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StocksentError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise StocksentError(f"{path}: line {number} is not a JSON object")
        yield row


def _labelled(rows: list[dict], path: Path, cfg: DataConfig) -> tuple[list[str], list[int]]:
    if not rows:
        raise StocksentError(f"{path}: no rows")
    present = set().union(*(row.keys() for row in rows[:1000]))
    missing = [c for c in (cfg.text_column, cfg.label_column) if c not in present]
    if missing:
        raise StocksentError(f"{path}: missing column(s) {', '.join(map(repr, missing))} "
                             f"(found: {', '.join(repr(c) for c in present if c is not None)})")
    names = {cfg.negative_label.strip().lower(): 0, cfg.positive_label.strip().lower(): 1}
    texts, labels, unknown = [], [], set()
    for row in rows:
        raw_label = str(row.get(cfg.label_column) or "").strip().lower()
        if raw_label not in names:
            unknown.add(raw_label)
            continue
        texts.append("" if row.get(cfg.text_column) is None else str(row[cfg.text_column]))
        labels.append(names[raw_label])
    if unknown:
        shown = ", ".join(repr(u) for u in sorted(unknown)[:10])
        raise StocksentError(f"{path}: unknown label value(s) {shown} in column {cfg.label_column!r}; "
                             f"expected {cfg.negative_label!r} or {cfg.positive_label!r}")
    return texts, labels

