"""The public API: a scikit-learn-style estimator that trains on messages and labels them."""
from __future__ import annotations

import dataclasses
import sys
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .adapt import check_settings, self_train
from .config import PRESETS, Config
from .config import preset as preset_config
from .corpus import tokenize_all
from .device import resolve_device
from .distributed import World
from .errors import StocksentError, not_fitted
from .metrics import sigmoid
from .model import build_model, load_weights
from .ngrams import NgramModel, flat_ids, saved_part
from .preprocess import ENTITY_CODES, coded_words, tokenize
from .pretrain import adopt, pretrain_settings, pretrain_tokens, start_from, wants_pretraining
from .priors import TickerPriors, estimate, split_priors
from .scorer import BlendedScorer, Scorer, make_scorer
from .split import split_messages
from .store import CONFIG, HISTORY, load_model, read_json, read_metrics, save_model, write_json
from .train import Run, progress_bar, run_metrics, scored, train_network
from .vocab import UNKNOWN, Vocab

# Every config field a constructor keyword may set, and the config section it belongs to.
HYPERPARAMETERS: dict[str, str] = {
    f.name: section for section in ("model", "preprocess", "data", "train")
    for f in dataclasses.fields(getattr(Config(), section)) if f.name != "vocab_size"}
# From this many messages the caller's thread encodes chunks of THREAD_CHUNK while a pool of as
# many threads as torch has scores them, one torch thread each (bench/suite.py measures it).
THREADED_FROM = 2048
THREAD_CHUNK = 2048  # fewer when there are fewer messages, so that every thread gets two chunks


class SentimentClassifier:
    """Tells bullish from bearish messages (or any two labels it is trained on).

    >>> clf = SentimentClassifier(epochs=4).fit(df.message, df.sentiment)
    >>> clf.predict(["$SPY to the moon 🚀"])
    array(['bullish'], dtype='<U7')
    >>> SentimentClassifier.load("models/default").predict_proba(["puts printing"])  # (n, 2)

    `preset` names the recipe to start from ("default" or "tutorial"); any field of its config
    (embedding_dim, lstm_sizes, lr, epochs, seed, val_fraction, ...) can be set as a keyword.
    """

    _estimator_type = "classifier"  # what scikit-learn before 1.6 reads instead of __sklearn_tags__

    def __init__(self, preset: str = "default", verbose: bool = False, **hyperparameters: Any):
        _check_names(hyperparameters)
        self.preset = preset
        self.verbose = verbose
        self._hyperparameters = dict(hyperparameters)

    # -- scikit-learn's estimator contract --------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"preset": self.preset, "verbose": self.verbose, **self._hyperparameters}

    def set_params(self, **params: Any) -> "SentimentClassifier":
        _check_names({k: v for k, v in params.items() if k not in ("preset", "verbose")})
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
        config = preset_config(self.preset)
        for name, value in self._hyperparameters.items():
            config = config.override(HYPERPARAMETERS[name], **{name: value})
        return config

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
        texts = _text_list(texts)
        codes, classes = _label_codes(labels, len(texts), config)
        config = config.override("data", negative_label=str(classes[0]), positive_label=str(classes[1]))
        parts = self._parts(config, texts, codes, classes, validation)
        log = self._log
        if config.train.init and unlabelled is not None:
            raise StocksentError("give unlabelled texts (pretrain here) or init (a pretrained model), not both")
        config, pretrained = start_from(config)
        if wants_pretraining(config, unlabelled is not None):
            extra = tokenize_all(_text_list(unlabelled), config.preprocess)[0] if unlabelled is not None else []
            settings = pretrain_settings(config)
            pretrained = pretrain_tokens(list(parts["train"][0]) + extra, config.model, config.preprocess, settings,
                                         log=log)
            config = adopt(config, pretrained)
        run = Run.prepare(config, parts, {"messages": len(texts), "classes": classes.tolist()},
                          (pretrained.vocab, pretrained.body) if pretrained else None)
        world = World(device=resolve_device(config.train.device))
        threads = torch.get_num_threads()
        try:
            trained = train_network(run, log=log, bar=progress_bar("fit") if self.verbose else None, world=world)
        finally:
            torch.set_num_threads(threads)  # a `threads` setting is for training, not for the caller after it
        self._set_fitted(trained.model, run.vocab, run.config, run_metrics(run, trained), classes,
                         device=str(world.device), ngrams=trained.ngrams)
        self.history_ = trained.progress.history
        return self

    def adapt(self, texts: Iterable[str], tagged: tuple[Iterable[str], Iterable[Any]], threshold: float = 0.9,
              rounds: int = 5, priors: bool = True) -> "SentimentClassifier":
        """Adapt the model to a new market's `texts`, their tags unread (adapt.py). Its n-gram
        part is fitted again on `tagged` = (texts, labels), the messages it was trained on, plus
        its own surest guesses for the market's, in up to `rounds` rounds; the networks are
        unchanged. Then, with `priors`, how bullish the market is on each ticker is estimated
        from its guesses, and shifts the scores of messages about that ticker (priors.py).
        Returns self; on an error it is left as it was."""
        self._fitted("adapt")
        check_settings(threshold, rounds)
        if self.ngrams_ is None and rounds:
            raise StocksentError("this model has no n-gram part to adapt (it was trained with ngrams 0); "
                                 "adapt its ticker priors alone with rounds 0 (--rounds 0)")
        market_texts = _text_list(texts)
        if not market_texts:
            raise StocksentError("no market messages to adapt to")
        train = self.encode(_text_list(tagged[0]))
        codes = _known_codes(tagged[1], len(train), self.classes_)
        market = self.encode(market_texts)
        ids, part, done = flat_ids(market), self.ngrams_, []
        network = (self._scorer.network if part is not None else self._scorer).logits(*ids)  # once: it stays
        if rounds:
            part, done = self_train(network, market, train, codes, part, self.config_.model, self.config_.train,
                                    threshold, rounds, self._log)
        record: dict[str, Any] = {"messages": len(market_texts), "tagged": len(train), "threshold": threshold,
                                  "rounds": done}
        found = None
        if priors:  # from the scores without any priors: an adapted model's own would count twice
            scores = part.blend(network, *ids) if part is not None else network
            found, record["priors"] = self._ticker_priors(scores, market_texts, codes)
        if rounds:
            self._scorer, self.ngrams_ = BlendedScorer(self._scorer.network, part), part
        self.priors_ = found
        self.metrics_ = {**self.metrics_, "adaptation": record}
        self.version_, self._source = None, None  # no saved directory holds these weights yet
        return self

    def _ticker_priors(self, scores: np.ndarray, texts: list[str],
                       codes: np.ndarray) -> tuple[TickerPriors, dict[str, Any]]:
        """Priors from the market's logits, against the tagged messages' share of positives (the
        networks learnt at that share; the part's guesses move the share it was fitted at by a
        point or two, which is left aside)."""
        found, record = estimate(sigmoid(scores), texts, float(codes.mean()))
        self._log(f"ticker priors: {record['tickers']} tickers; the market's positive share "
                  f"{record['market_prior']:.1%}, against {record['trained_prior']:.1%} in training")
        return found, record

    def _log(self, line: str) -> None:
        if self.verbose:
            print(line, file=sys.stderr, flush=True)

    def _parts(self, config: Config, texts: list[str], codes: np.ndarray, classes: np.ndarray,
               validation: tuple[Iterable[str], Iterable[Any]] | None) -> dict[str, tuple[list, np.ndarray]]:
        tokens, codes = _usable(texts, codes, config, "the training messages")
        if validation is not None:
            val_texts = _text_list(validation[0])
            val_codes = _known_codes(validation[1], len(val_texts), classes)
            parts = {"train": (tokens, codes), "val": _usable(val_texts, val_codes, config, "the validation set")}
        else:
            split = split_messages(tokens, config.data, test_fraction=0.0)
            parts = {name: ([tokens[i] for i in split[name]], codes[split[name]]) for name in ("train", "val")}
        if len(np.unique(parts["train"][1])) < 2:
            raise StocksentError("the messages left for training hold one label only (after holding out "
                                 "validation and dropping empty texts); give more messages of each label")
        return parts

    def _set_fitted(self, model: nn.Module, vocab: Vocab, config: Config, metrics: dict[str, Any],
                    classes: np.ndarray, scorer: Scorer | None = None, device: str = "cpu",
                    ngrams: NgramModel | None = None, priors: TickerPriors | None = None) -> None:
        self.model_, self.vocab_, self.config_, self.metrics_ = model, vocab, config, metrics
        self.classes_, self.ngrams_, self.priors_ = classes, ngrams, priors
        self.version_: str | None = None  # the saved weights' sha256, 12 hex digits, once saved or loaded
        self._scorer = scorer or make_scorer(model, device, ngrams=ngrams)
        # Word -> id, entity codes included: encoding skips the code -> special token step.
        self._word_ids = {**vocab.stoi,
                          **{code: vocab.stoi.get(token, UNKNOWN) for code, token in ENTITY_CODES.items()}}
        self._source: tuple | None = None  # (folder, device, backend) once loaded from a directory

    # -- saved models -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model directory `stocksent train` writes (config, vocabulary, weights, metrics)."""
        self._fitted("save")
        folder = Path(path)
        save_model(folder, self.config_, self.vocab_, self.state_dict(), self.metrics_)
        write_json(folder / HISTORY, getattr(self, "history_", []))
        self.version_ = _saved_version(folder)
        return folder

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor `save` writes to model.safetensors: the networks', the n-gram part's, and
        the ticker priors of an adapted model."""
        self._fitted("state_dict")
        if self.model_ is None:
            raise StocksentError("a model loaded with the onnx backend has no weights to save; save the torch one")
        state = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        return {**state, **(self.ngrams_.tensors() if self.ngrams_ is not None else {}),
                **(self.priors_.tensors() if self.priors_ is not None else {})}

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", backend: str = "torch",
             threads: int = 0) -> "SentimentClassifier":
        """Rebuild a saved model. backend "torch" runs on `device` (cpu, cuda, or auto: cuda when
        torch sees a GPU); backend "onnx" runs the directory's model.onnx with onnxruntime."""
        if backend not in ("torch", "onnx"):
            raise StocksentError(f"unknown backend {backend!r}; choose torch or onnx")
        folder = Path(path)
        config, vocab, state = load_model(folder)
        state, priors = split_priors(state, str(folder))
        state, ngrams, config = saved_part(state, config, str(folder))
        model = load_weights(build_model(config.model), state, str(folder))
        scorer = make_scorer(model, device, folder if backend == "onnx" else None, threads, ngrams)
        clf = cls._from_config(config)
        metrics = read_metrics(folder)
        clf._set_fitted(None if backend == "onnx" else model, vocab, config, metrics,
                        _config_classes(config, metrics), scorer, ngrams=ngrams, priors=priors)
        history = folder / HISTORY
        clf.history_ = read_json(history) if history.exists() else []
        clf.version_ = _saved_version(folder)
        clf._source = (folder, device, backend)
        return clf

    @classmethod
    def from_model(cls, model: nn.Module, vocab: Vocab, config: Config, device: str = "cpu",
                   metrics: dict | None = None, ngrams: NgramModel | None = None) -> "SentimentClassifier":
        """A classifier around a network in memory (and its n-gram part, if any), set up for
        scoring as `load` sets up a saved one."""
        clf = cls._from_config(config)
        clf._set_fitted(model.eval(), vocab, config, metrics or {}, _config_classes(config), device=device,
                        ngrams=ngrams)
        return clf

    @classmethod
    def _from_config(cls, config: Config) -> "SentimentClassifier":
        """An estimator whose parameters rebuild `config`: its preset and the fields that differ."""
        name = config.preset if config.preset in PRESETS else "default"
        base = preset_config(name).to_dict()
        changed = {field: value for section, values in config.to_dict().items() if isinstance(values, dict)
                   for field, value in values.items()
                   if field in HYPERPARAMETERS and base[section].get(field) != value}
        return cls(preset=name, **changed)

    # -- scoring ----------------------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, str]:
        """The two label names as strings: (negative, positive)."""
        self._fitted("reading its labels")
        return self.config_.data.negative_label, self.config_.data.positive_label

    @property
    def config(self) -> Config:
        self._fitted("reading its config")
        return self.config_

    @property
    def vocab(self) -> Vocab:
        self._fitted("reading its vocabulary")
        return self.vocab_

    @property
    def metrics(self) -> dict[str, Any]:
        self._fitted("reading its metrics")
        return self.metrics_

    def _fitted(self, what: str) -> None:
        if not hasattr(self, "_scorer"):
            raise not_fitted(what)

    def decision_function(self, texts: Iterable[str]) -> np.ndarray:
        """(n,) logits: above 0 leans to the positive label (classes_[1])."""
        self._fitted("decision_function")
        return self._text_logits(_text_list(texts))

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
        texts = _text_list(texts)
        codes = _known_codes(labels, len(texts), self.classes_)
        return float(((self.positive_proba(texts) >= 0.5) == codes).mean())

    def evaluate(self, texts: Iterable[str], labels: Iterable[Any]) -> dict[str, Any]:
        """Accuracy, per-class scores, ROC-AUC, confusion matrix and the training loss."""
        self._fitted("evaluate")
        texts = _text_list(texts)
        codes = _known_codes(labels, len(texts), self.classes_)
        return scored(self.decision_function(texts), codes, self.config_.train.loss, self.labels)

    def explain(self, text: str, top: int = 5, in_order: bool = False) -> list[tuple[str, float]]:
        """The `top` tokens that moved this message's score most, by occlusion: each token is
        left out in turn and the message scored again. Returns (token, effect) pairs, largest
        |effect| first, or in the message's order with `in_order`; effect = probability with the
        token - probability without it, so a positive effect pushed the message towards the
        positive label. Words the model never saw in training are read as one unknown word, but
        shown as written."""
        self._fitted("explain")
        if not isinstance(text, str):
            raise TypeError(f"explain takes one string, not {type(text).__name__}")
        prep = self.config_.preprocess
        tokens = tokenize(text, prep.keep_emoji)[: prep.max_tokens]
        if not tokens:
            return []
        variants = [self._ids(tokens)] + [self._ids(tokens[:i] + tokens[i + 1:]) for i in range(len(tokens))]
        lengths = np.fromiter(map(len, variants), dtype=np.int64, count=len(variants))
        shift = self.priors_.shift([text])[0] if self.priors_ is not None else 0.0  # the same for every variant
        prob = sigmoid(self._scorer.logits(np.concatenate(variants), lengths) + shift)
        effects = prob[0] - prob[1:]
        order = np.argsort(-np.abs(effects), kind="stable")[:max(top, 0)]
        if in_order:
            order = np.sort(order)
        return [(tokens[i], float(effects[i])) for i in order]

    def _ids(self, tokens: list[str]) -> np.ndarray:
        return np.asarray(self.vocab_.encode(tokens) or [UNKNOWN], dtype=np.int64)

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Token ids per message; a message with no tokens left is read as one unknown word."""
        self._fitted("encode")
        flat, lengths = self._encode_flat(texts)
        ends = np.cumsum(lengths).tolist()
        return [flat[end - length:end] for end, length in zip(ends, lengths.tolist())]

    def _encode_flat(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every message's ids one after another, and their lengths: converting each message's
        list on its own costs more than tokenising it."""
        prep, word_id = self.config_.preprocess, self._word_ids.get
        ids, lengths = [], []
        for text in texts:
            words = [word_id(w, UNKNOWN) for w in coded_words(text, prep.keep_emoji)[: prep.max_tokens]] or [UNKNOWN]
            ids.extend(words)
            lengths.append(len(words))
        return np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    def _text_logits(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty(0, np.float32)
        lanes = torch.get_num_threads()
        if not self._scorer.concurrent or lanes < 2 or len(texts) < THREADED_FROM:
            logits = self._scorer.logits(*self._encode_flat(texts))
        else:
            logits = self._pool_logits(texts, lanes)
        return logits + self.priors_.shift(texts) if self.priors_ is not None else logits

    def _pool_logits(self, texts: list[str], lanes: int) -> np.ndarray:
        """Encode chunks here while `lanes` threads of one torch thread each score them."""
        size = min(THREAD_CHUNK, -(-len(texts) // (2 * lanes)))
        # Longest texts first: a chunk's messages are then of similar length (so are its batches'),
        # and the last chunks, which may leave a thread idle, are the quickest.
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        out = np.empty(len(texts), dtype=np.float32)
        pool, pending = ThreadPoolExecutor(lanes, initializer=torch.set_num_threads, initargs=(1,)), deque()
        try:
            for start in range(0, len(texts), size):  # this thread encodes while the pool scores
                index = order[start:start + size]
                pending.append((index, pool.submit(self._scorer.logits, *self._encode_flat([texts[i] for i in index]))))
                if len(pending) > 2 * lanes:  # bounded: encoded chunks wait for no more than this
                    index, future = pending.popleft()
                    out[index] = future.result()
            for index, future in pending:
                out[index] = future.result()
            return out
        finally:
            pool.shutdown(cancel_futures=True)  # on an error or Ctrl-C, no chunks run on after it
            # torch's thread count is process-wide (each worker set it to 1): give it back
            torch.set_num_threads(lanes)

    # -- files ------------------------------------------------------------------------------------

    def loader(self, threads: int = 1) -> Callable[[], "SentimentClassifier"]:
        """A picklable function that loads this model again (for worker processes)."""
        import functools

        self._fitted("starting workers")
        if self._source is None:
            raise StocksentError("scoring on several processes needs a model loaded from a directory: "
                                 "save it, then SentimentClassifier.load(path)")
        folder, device, backend = self._source
        return functools.partial(SentimentClassifier.load, folder, device, backend, threads)

    def predict_file(self, src: str | Path, dst: str | Path, text_column: str = "message",
                     batch_size: int = 8192, workers: int = 1, progress: Callable[[int], None] | None = None) -> int:
        """Score the `text_column` of a CSV, JSONL or Parquet file into `dst` (CSV, JSONL or
        Parquet by its extension: text, label, probability of the positive label), in chunks of
        `batch_size` so that memory stays bounded; returns the number of messages. `dst` appears
        only once complete; `progress(n)` hears of each chunk of n messages written."""
        from .stream import predict_file

        return predict_file(self, Path(src), Path(dst), text_column, batch_size, workers, progress)


def _check_names(params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - set(HYPERPARAMETERS))
    if unknown:
        raise TypeError(f"unknown hyperparameter(s) {', '.join(unknown)}; SentimentClassifier takes preset, "
                        f"verbose and the config fields: {', '.join(sorted(HYPERPARAMETERS))}")


def _usable(texts: list[str], codes: np.ndarray, config: Config, what: str) -> tuple[list[list[str]], np.ndarray]:
    """Tokens and labels of the messages with any tokens left after normalisation."""
    tokens, keep = tokenize_all(texts, config.preprocess)
    if not keep:
        raise StocksentError(f"no usable messages in {what}: every text is empty after normalisation")
    return [tokens[i] for i in keep], codes[keep]


def _saved_version(folder: Path) -> str:
    return str(read_json(folder / CONFIG).get("weights_sha256", ""))[:12]


def _config_classes(config: Config, metrics: dict[str, Any] | None = None) -> np.ndarray:
    """The two classes: as fit saw them (0 / 1, booleans, names) where the metrics recorded
    them, else the config's label names."""
    recorded = (metrics or {}).get("dataset", {}).get("classes")
    names = [config.data.negative_label, config.data.positive_label]
    if isinstance(recorded, list) and [str(c) for c in recorded] == names:
        return np.asarray(recorded)
    return np.asarray(names)


def _text_list(texts: Iterable[str]) -> list[str]:
    """The texts as a list (from a list, tuple, numpy array or pandas Series), or a TypeError
    naming the first thing that is not a string."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"expected an iterable of strings (a list, array or Series), not {type(texts).__name__}")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"expected strings, but item {i} is {type(text).__name__}: {text!r:.40}")
    return batch


def _label_list(labels: Iterable[Any], n: int) -> list[Any]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise TypeError(f"labels must be an iterable of label values, not {type(labels).__name__}")
    values = list(labels)
    if len(values) != n:
        raise ValueError(f"{n} texts but {len(values)} labels: give one label per text")
    return values


def _label_codes(labels: Iterable[Any], n: int, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0 / 1 and the two classes (negative first): the config's label names when the
    labels are those, else the two values in sorted order (0 / 1, False / True)."""
    values = _label_list(labels, n)
    distinct = list(dict.fromkeys(values))
    if len(distinct) != 2:
        shown = ", ".join(repr(v) for v in distinct[:10])
        raise ValueError(f"labels hold {len(distinct)} distinct value(s) ({shown}); a SentimentClassifier "
                         "needs exactly two, with examples of each")
    names = [config.data.negative_label.strip().lower(), config.data.positive_label.strip().lower()]
    spelled = [str(v).strip().lower() for v in distinct]
    if sorted(spelled) == sorted(names):
        distinct.sort(key=lambda v: names.index(str(v).strip().lower()))
    else:
        try:
            distinct.sort()
        except TypeError:
            pass  # values of mixed types: the order they first appear in
    classes = np.asarray(distinct)
    return _known_codes(values, n, classes), classes


def _known_codes(labels: Iterable[Any], n: int, classes: np.ndarray) -> np.ndarray:
    """Labels as 0 / 1 against known classes; a ValueError naming any other value."""
    values = _label_list(labels, n)
    index = {value: code for code, value in enumerate(classes.tolist())}
    codes = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    if (codes < 0).any():
        unknown = sorted({repr(v) for v, c in zip(values, codes) if c < 0})[:10]
        raise ValueError(f"unknown label value(s) {', '.join(unknown)}; this model knows "
                         f"{', '.join(repr(c) for c in classes.tolist())}")
    return codes
