"""The model as Dask workers get it: the bytes of its directory's files, sent once with the job
(a graph dependency, which each worker fetches once), and loaded once per worker process, keyed
by their checksum. Nothing of the model is pickled as a Python object, and a worker needs no
copy of the model directory."""
from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..classifier import SentimentClassifier
from ..data.store import CONFIG, VOCAB, WEIGHTS, load_model, read_json, weights_file
from ..scoring.predictor import Predictor

KEPT = 2  # models a worker process keeps loaded: a job's, and the one before it


@dataclass(frozen=True)
class ModelFiles:
    """A saved model's files by name, and a checksum of them all."""

    digest: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, model: str | Path | SentimentClassifier) -> "ModelFiles":
        """The files of a model directory, or of a fitted classifier (saved to a temporary
        directory first unless it was loaded from one and has not changed since)."""
        if isinstance(model, SentimentClassifier):
            source = model.predictor_.source if hasattr(model, "predictor_") else None
            if source is None:
                with tempfile.TemporaryDirectory(prefix="stocksent-model-") as folder:
                    return cls.of(model.save(folder))
            model = source[0]
        folder = Path(model)
        load_model(folder)  # one line for a missing, partial or corrupt model, before any job starts
        # The weights loading takes (after a save cut short too); each worker checks them again as it loads.
        weights = weights_file(folder, read_json(folder / CONFIG).get("weights_sha256")).read_bytes()
        files = ((CONFIG, (folder / CONFIG).read_bytes()), (VOCAB, (folder / VOCAB).read_bytes()), (WEIGHTS, weights))
        digest = hashlib.sha256()
        for name, data in files:
            digest.update(name.encode() + len(data).to_bytes(8, "little") + data)
        return cls(digest.hexdigest(), files)


_loaded: dict[str, Predictor] = {}
_loading = threading.Lock()


def loaded(model: ModelFiles, device: str = "auto") -> Predictor:
    """The model, loaded in this process at its first use on `device` (auto: a GPU where the
    worker has one)."""
    key = f"{model.digest}:{device}"
    with _loading:  # a worker's threads share one copy
        if key not in _loaded:
            while len(_loaded) >= KEPT:
                _loaded.pop(next(iter(_loaded)))
            with tempfile.TemporaryDirectory(prefix="stocksent-model-") as folder:
                for name, data in model.files:
                    (Path(folder) / name).write_bytes(data)
                _loaded[key] = Predictor.load(folder, device=device)
        return _loaded[key]
