"""The public API: a scikit-learn-style estimator that trains on messages and labels them."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import Config, as_fields, check_fields, with_fields
from .data.corpus import tokenize_all
from .data.store import HISTORY, read_json, read_metrics, write_json
from .data.table import input_files
from .errors import not_fitted
from .nets.device import resolve_device
from .nets.distributed import World
from .scoring.explain import explain
from .scoring.index import Columns, Estimator, estimator_for, frame_chunks, market_index
from .scoring.metrics import sigmoid
from .scoring.ngrams import NgramModel
from .scoring.predictor import Predictor
from .scoring.stream import predict_file
from .text.labels import codes_only, known_codes, label_codes, recorded_classes, text_list
from .text.vocab import Vocab
from .training.adapt import Check, adapt
from .training.pretrain import classifier_labels
from .training.runs import memory_source, train_run
from .training.train import progress_bar, scored


class SentimentClassifier:
    """Tells bullish from bearish messages (or any two labels it is trained on).

    >>> clf = SentimentClassifier(epochs=4).fit(df.message, df.sentiment)
    >>> clf.predict(["$SPY to the moon 🚀"])
    array(['bullish'], dtype='<U7')
    >>> SentimentClassifier.load("models/default").predict_proba(["puts printing"])  # (n, 2)

    `preset` names the recipe to start from ("default", "tutorial", or "finetune" with
    `init=` a trained model's directory); any field of its config
    (embedding_dim, lstm_sizes, lr, epochs, seed, val_fraction, ...) can be set as a keyword.
    """

    _estimator_type = "classifier"  # what scikit-learn before 1.6 reads instead of __sklearn_tags__

    def __init__(self, preset: str = "default", verbose: bool = False, **hyperparameters: Any):
        check_fields(hyperparameters)
        self.preset = preset
        self.verbose = verbose
        self._hyperparameters = dict(hyperparameters)

    # -- scikit-learn's estimator contract --------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"preset": self.preset, "verbose": self.verbose, **self._hyperparameters}

    def set_params(self, **params: Any) -> "SentimentClassifier":
        check_fields(k for k in params if k not in ("preset", "verbose"))
        self.preset = params.pop("preset", self.preset)
        self.verbose = params.pop("verbose", self.verbose)
        self._hyperparameters.update(params)
        return self

    def __repr__(self) -> str:
        defaults = (("preset", "default"), ("verbose", False))
        shown = {k: v for k, v in self.get_params().items() if (k, v) not in defaults}
        return f"SentimentClassifier({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=False),
                    input_tags=InputTags(one_d_array=True, two_d_array=False, string=True))

    def build_config(self) -> Config:
        """The preset with this estimator's hyperparameters applied (validated)."""
        return with_fields(self.preset, self._hyperparameters)

    # -- training ---------------------------------------------------------------------------------

    def fit(self, texts: Iterable[str], labels: Iterable[Any],
            validation: tuple[Iterable[str], Iterable[Any]] | None = None,
            unlabelled: Iterable[str] | None = None) -> "SentimentClassifier":
        """Train on `texts` and their `labels` (two distinct values: names, 0 / 1 or booleans).
        Early stopping watches a validation set: `validation=(texts, labels)`, or else the
        config's val_fraction of the given messages, held out by its seed. When the recipe
        pretrains (`pretraining`), or `unlabelled` texts are given, the layers are first
        pretrained on the training messages and those (pretrain.py), and the classifier starts
        from them."""
        config = self.build_config()
        texts = text_list(texts)
        codes, classes = label_codes(labels, len(texts), config.data.negative_label, config.data.positive_label)
        started = classifier_labels(config.run.init) if config.run.init else None
        names = started if started and codes_only(classes) else (str(classes[0]), str(classes[1]))
        config = config.override("data", negative_label=names[0], positive_label=names[1])
        source = memory_source(texts, codes, classes, validation)
        source(config)  # its mistakes (no usable messages, one label) told before anything trains
        untagged = tokenize_all(text_list(unlabelled), config.preprocess)[0] if unlabelled is not None else []
        world = World(device=resolve_device(config.run.device))
        done = train_run(config, source, untagged=untagged, log=self._log, world=world,
                         bar=progress_bar("fit") if self.verbose else None)
        self._set_fitted(done.predictor(str(world.device)), done.metrics, classes)
        self.history_ = done.trained.progress.history
        return self

    def adapt(self, texts: Iterable[str], tagged: tuple[Iterable[str], Iterable[Any]], threshold: float = 0.9,
              rounds: int = 5, priors: bool = True, market_tags: tuple[Iterable[str], Iterable[Any]] | None = None,
              held_out: tuple[Iterable[str], Iterable[Any]] | None = None,
              validation: tuple[Iterable[str], Iterable[Any]] | None = None) -> "SentimentClassifier":
        """Adapt the model to a new market's `texts`, their tags unread (adapt.py). Its n-gram
        part is fitted again on `tagged` = (texts, labels), the messages it was trained on, plus
        its own surest guesses for the market's, in up to `rounds` rounds; the networks are
        unchanged. Then, with `priors`, how bullish the market is on each ticker is estimated
        from its guesses, and shifts the scores of messages about that ticker (priors.py).
        `market_tags` = (texts, labels): the market's own tagged messages, if any, which the
        estimates are calibrated on; the adapted model must score no worse on them (accuracy,
        ROC-AUC) nor on `held_out` tagged messages (ROC-AUC), else a StocksentError says what
        fell. `validation` = (texts, labels), the model's validation split: the calibration set
        `index` reads is made of it again once the part is refitted (as `stocksent adapt` does);
        without it the model is left with none. Returns self; on an error it is left as it was."""
        self._fitted("adapt")
        market, train = text_list(texts), text_list(tagged[0])
        codes = known_codes(tagged[1], len(train), self.classes_)
        own, checks = self._tagged(market_tags), []
        if held_out is not None:
            checks = [Check("the held-out messages", *self._tagged(held_out))]
        val = self._tagged(validation)
        self.predictor_, record = adapt(self.predictor_, market, train, codes, threshold, rounds, priors, self._log,
                                        own, checks, val)
        self.metrics_ = {**self.metrics_, "adaptation": record}
        self.version_ = None  # no saved directory holds these weights yet
        return self

    def _tagged(self, pair: tuple[Iterable[str], Iterable[Any]] | None) -> tuple[list[str], np.ndarray] | None:
        """Texts and their labels as 0 / 1 codes (None stays None)."""
        if pair is None:
            return None
        texts = text_list(pair[0])
        return texts, known_codes(pair[1], len(texts), self.classes_)

    def _log(self, line: str) -> None:
        if self.verbose:
            print(line, file=sys.stderr, flush=True)

    def _set_fitted(self, predictor: Predictor, metrics: dict[str, Any], classes: np.ndarray) -> None:
        self.predictor_, self.metrics_, self.classes_ = predictor, metrics, classes
        self.version_ = predictor.version  # the saved weights' sha256, 12 hex digits, once saved or loaded

    # -- saved models -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model directory `stocksent train` writes (config, vocabulary, weights, metrics)."""
        self._fitted("save")
        folder = Path(path)
        self.predictor_.save(folder, self.metrics_)
        write_json(folder / HISTORY, getattr(self, "history_", []))
        self.version_ = self.predictor_.version
        return folder

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor `save` writes to model.safetensors: the networks' and their parts'."""
        self._fitted("state_dict")
        return self.predictor_.state_dict()

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", backend: str = "torch",
             threads: int = 0) -> "SentimentClassifier":
        """Rebuild a saved model. backend "torch" runs on `device` (cpu, cuda, or auto: cuda when
        torch sees a GPU); backend "onnx" runs the directory's model.onnx with onnxruntime."""
        predictor = Predictor.load(path, device, backend, threads)
        folder = Path(path)
        metrics = read_metrics(folder)
        clf = cls._from_config(predictor.config)
        clf._set_fitted(predictor, metrics, recorded_classes(predictor.labels, metrics))
        history = folder / HISTORY
        clf.history_ = read_json(history) if history.exists() else []
        return clf

    @classmethod
    def from_model(cls, model: nn.Module, vocab: Vocab, config: Config, device: str = "cpu",
                   metrics: dict | None = None, ngrams: NgramModel | None = None) -> "SentimentClassifier":
        """A classifier around a network in memory (and its n-gram part, if any), set up for
        scoring as `load` sets up a saved one."""
        predictor = Predictor.build(model, vocab, config, device, [ngrams] if ngrams is not None else [])
        clf = cls._from_config(config)
        clf._set_fitted(predictor, metrics or {}, recorded_classes(predictor.labels))
        return clf

    @classmethod
    def _from_config(cls, config: Config) -> "SentimentClassifier":
        """An estimator whose parameters rebuild `config`: its preset and the fields that differ."""
        name, changed = as_fields(config)
        return cls(preset=name, **changed)

    # -- scoring ----------------------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, str]:
        """The two label names as strings: (negative, positive)."""
        self._fitted("reading its labels")
        return self.predictor_.labels

    @property
    def config(self) -> Config:
        self._fitted("reading its config")
        return self.predictor_.config

    @property
    def vocab(self) -> Vocab:
        self._fitted("reading its vocabulary")
        return self.predictor_.vocab

    @property
    def metrics(self) -> dict[str, Any]:
        self._fitted("reading its metrics")
        return self.metrics_

    def _fitted(self, what: str) -> None:
        if not hasattr(self, "predictor_"):
            raise not_fitted(what)

    def decision_function(self, texts: Iterable[str]) -> np.ndarray:
        """(n,) logits: above 0 leans to the positive label (classes_[1])."""
        self._fitted("decision_function")
        return self.predictor_.logits(text_list(texts))

    def positive_proba(self, texts: Iterable[str]) -> np.ndarray:
        """(n,) probability of the positive label, classes_[1]."""
        return sigmoid(self.decision_function(texts))

    def predict_proba(self, texts: str | Iterable[str]) -> np.ndarray:
        """(n, 2) probabilities, columns in classes_ order; (2,) for one string."""
        positive = self.positive_proba([texts] if isinstance(texts, str) else texts)
        both = np.stack([1 - positive, positive], axis=1)
        return both[0] if isinstance(texts, str) else both

    def predict(self, texts: str | Iterable[str]) -> Any:
        """Labels from classes_: an array for many texts, one label for one string."""
        positive = self.positive_proba([texts] if isinstance(texts, str) else texts) >= 0.5
        predicted = self.classes_[positive.astype(np.int64)]
        return predicted[0] if isinstance(texts, str) else predicted

    def score(self, texts: Iterable[str], labels: Iterable[Any]) -> float:
        """Accuracy on labelled messages (labels as in fit)."""
        self._fitted("score")
        texts = text_list(texts)
        codes = known_codes(labels, len(texts), self.classes_)
        return float(((self.positive_proba(texts) >= 0.5) == codes).mean())

    def evaluate(self, texts: Iterable[str], labels: Iterable[Any]) -> dict[str, Any]:
        """Accuracy, per-class scores, ROC-AUC, confusion matrix and the training loss."""
        self._fitted("evaluate")
        texts = text_list(texts)
        codes = known_codes(labels, len(texts), self.classes_)
        return scored(self.decision_function(texts), codes, self.config.train, self.labels)

    def explain(self, text: str, top: int = 5, in_order: bool = False) -> list[tuple[str, float]]:
        """The `top` tokens that moved this message's score most, by occlusion (explain.py):
        (token, effect) pairs, largest |effect| first, or in the message's order with `in_order`;
        effect = probability with the token - probability without it."""
        self._fitted("explain")
        return explain(self.predictor_, text, top, in_order)

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Token ids per message; a message with no tokens left is read as one unknown word."""
        self._fitted("encode")
        return self.predictor_.encode(texts)

    def index(self, frame: pd.DataFrame, freq: str = "day", text_column: str = "message",
              time_column: str = "created_at", ticker_column: str | None = None, method: str | None = None,
              level: float = 0.9, calibration: tuple[Iterable[str], Iterable[Any]] | None = None) -> pd.DataFrame:
        """Per ticker and period of `frame`'s messages, the estimated share of bullish ones with
        its `level` interval, bullishness and agreement (scoring/index.py). A message's ticker is
        its `ticker_column` or, without one, its first cashtag. `method` is a quantification
        method (quantify.py; default: emq, or emq-platt given `calibration`); the adjusted ones
        read the model's calibration set, or the market's own tagged messages `calibration` =
        (texts, labels). Where `frame` has the
        model's label column, each row also holds its tagged messages and their bullish share."""
        estimator = self.index_estimator(method, level, calibration)
        columns = Columns(text_column, time_column, ticker_column, self.config.data.label_column)
        return pd.DataFrame(market_index(self.predictor_, frame_chunks(frame, columns, self.labels), freq, estimator))

    def index_estimator(self, method: str | None = None, level: float = 0.9,
                        calibration: tuple[Iterable[str], Iterable[Any]] | None = None) -> Estimator:
        """What `index` estimates each cell's share with (its arguments of those names)."""
        self._fitted("index")
        return estimator_for(self.predictor_, method, self._tagged(calibration), level)

    # -- files ------------------------------------------------------------------------------------

    def loader(self, threads: int = 1) -> Callable[[], "SentimentClassifier"]:
        """A picklable function that loads this model again (for worker processes)."""
        self._fitted("starting workers")
        return functools.partial(SentimentClassifier.load, *self.predictor_.loaded_from(), threads)

    def predict_file(self, src: str | Path | Iterable[str | Path], dst: str | Path, text_column: str = "message",
                     batch_size: int = 8192, workers: int = 1, progress: Callable[[int], None] | None = None) -> int:
        """Score the `text_column` of CSV, JSONL or Parquet files (a file, a directory, a glob
        pattern, or a list of those; all of one layout) into `dst` (CSV, JSONL or Parquet by its
        extension: the input's columns, then label and probability of the positive label), in
        chunks of `batch_size` so that memory stays bounded; returns the number of messages.
        `dst` appears only once complete; `progress(n)` hears of each chunk of n messages written."""
        self._fitted("predict_file")
        sources = input_files([src] if isinstance(src, (str, Path)) else list(src))
        return predict_file(self.predictor_, sources, Path(dst), text_column, batch_size, workers, progress)
