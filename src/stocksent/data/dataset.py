"""The data set: where it lives, fetching it, and checking its sha256."""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import StocksentError
from .store import atomic_destination
from .table import read_messages, read_texts  # noqa: F401  (callers import them from here)

DATA_FILENAME = "StockTwits_SPY_Sentiment_2017.gz"
DATA_SHA256 = "2764ef980af1af85d2c4d180ced1ce54cf20186b7a07c301304dbd72a5a4eeef"
DATA_URL = "https://github.com/garretthoffman/lstm-oreilly/raw/master/data/" + DATA_FILENAME


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
    found = _search()
    if found is None:
        raise StocksentError("no data found: run `stocksent data fetch`, or pass --data PATH "
                             "or set STOCKSENT_DATA")
    return found


def ensure_data(url: str = DATA_URL) -> tuple[Path, bool]:
    """The data file find_data() finds, else the data set fetched from `url` into the cache;
    and whether it was fetched. A STOCKSENT_DATA naming no file stays an error."""
    if os.environ.get("STOCKSENT_DATA"):
        return find_data(), False
    found = _search()
    return (found, False) if found else (fetch(url=url), True)


def _search() -> Path | None:
    for candidate in [cache_dir() / DATA_FILENAME, *_shared_candidates()]:
        if candidate.is_file():
            return candidate
    return None


def data_for_model(explicit: str | os.PathLike | None, dataset: dict) -> Path:
    """`explicit` if given, else the file a model was trained on (its metrics' "dataset") if it
    is still there, else the usual search."""
    source = dataset.get("source")
    if not explicit and source and Path(source).is_file():
        return Path(source)
    return find_data(explicit)


def split_files(dataset: dict, val: str | os.PathLike | None = None,
                test: str | os.PathLike | None = None) -> dict[str, Path]:
    """The files a run's validation and test splits come from, where they are files of their own:
    those given, else those a model's or checkpoint's `dataset` record names."""
    files = {}
    for name, given in (("val", val), ("test", test)):
        recorded = dataset.get(name)
        if given:
            files[name] = _existing(Path(given), f"--{name}-data")
        elif isinstance(recorded, dict) and recorded.get("source"):
            files[name] = _existing(Path(recorded["source"]), f"the {name} split it was trained with")
    return files


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
    # The temporary file sits beside dest and is removed on any failure: a bad download leaves
    # neither it nor a partial dest, and an older good copy stays.
    with atomic_destination(dest) as tmp:
        if source:
            _copy_local(Path(source), tmp)
        else:
            _download(url, tmp, dest)
        got = file_sha256(tmp)
        if got != DATA_SHA256:
            where = "" if source else f" from {url}; {_by_hand(dest)}"
            raise StocksentError(f"checksum mismatch: expected sha256 {DATA_SHA256}, got {got}; "
                                 f"nothing was saved{where}")
    return dest


def _copy_local(source: Path, tmp: Path) -> None:
    _existing(source, "--from")
    try:
        shutil.copyfile(source, tmp)
    except OSError as exc:
        raise StocksentError(f"cannot copy {source}: {exc.strerror}") from None


def _download(url: str, tmp: Path, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
    # HTTPException: a connection cut mid-body (IncompleteRead) is not an OSError.
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise StocksentError(f"download failed from {url}: {_reason(exc)}; {_by_hand(dest)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc  # URLError wraps the socket's error
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return " ".join(text.split())


def _by_hand(dest: Path) -> str:
    return f"put {dest.name} into {dest.parent}/ (or pass --data PATH)"
