"""Typed configuration: model, preprocessing, data, training, and the named presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import StocksentError

FORMAT_VERSION = 1
MAX_WIDTH = 4096  # embedding and layer sizes: wider than this is a typo on any machine this runs on


@dataclass
class ModelConfig:
    """Shape of the network; `vocab_size` is filled in once the vocabulary is built."""

    vocab_size: int = 0
    embedding_dim: int = 300
    lstm_sizes: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.5  # after each LSTM layer; the article's keep probability 0.5
    embedding_dropout: float = 0.0  # on the word vectors, before the first LSTM layer
    forget_bias: float = 1.0  # TensorFlow's LSTM cell adds 1.0 to the forget gate
    embedding_init: str = "uniform"  # "uniform" (-1, 1) as the article, or "normal" (PyTorch's)
    weight_init: str = "pytorch"  # LSTM and output weights: "pytorch" defaults or "glorot" (TensorFlow's)
    initial_state: str = "zero"  # LSTM state before the first word: "zero", or "learned" per layer
    pooling: str = "last"  # what the head reads: the "last" word's output, or "max" / "mean" over words
    bidirectional: bool = False  # each layer also reads each message from its last word back
    bigram_buckets: int = 0  # > 0: the head also reads a bag of word pairs, hashed into this many rows
    bigram_dim: int = 16  # size of each word pair's vector in that bag
    members: int = 1  # > 1: that many networks, each initialised and trained on its own loss, logits averaged
    # > 0: beside the network, a linear model over the word 1..ngrams-grams a message holds (ngrams.py),
    # fitted once the network is trained; the logit is (1 - ngram_share) network + ngram_share part.
    ngrams: int = 0
    ngram_share: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.lstm_sizes, tuple):  # as Python callers often write a sequence of sizes
            self.lstm_sizes = list(self.lstm_sizes)
        _check_types(self)
        _check(0 < self.embedding_dim <= MAX_WIDTH, f"embedding_dim must be between 1 and {MAX_WIDTH}")
        _check(0 < len(self.lstm_sizes) <= 16 and all(0 < h <= MAX_WIDTH for h in self.lstm_sizes),
               f"lstm_sizes must be 1 to 16 layers of 1 to {MAX_WIDTH} units")
        _check(0.0 <= self.dropout < 1.0 and 0.0 <= self.embedding_dropout < 1.0,
               "dropout must be in [0, 1)")
        _check(self.embedding_init in ("uniform", "normal"), "embedding_init must be uniform or normal")
        _check(self.weight_init in ("pytorch", "glorot"), "weight_init must be pytorch or glorot")
        _check(self.initial_state in ("zero", "learned"), "initial_state must be zero or learned")
        _check(self.pooling in ("last", "max", "mean"), "pooling must be last, max or mean")
        _check(0 <= self.bigram_buckets <= 2 ** 24 and 0 < self.bigram_dim <= MAX_WIDTH,
               f"bigram_buckets must be between 0 and 16777216, bigram_dim between 1 and {MAX_WIDTH}")
        _check(1 <= self.members <= 16, "members must be between 1 and 16")
        _check(0 <= self.ngrams <= 3, "ngrams must be between 0 (none) and 3")
        _check(0.0 < self.ngram_share < 1.0, "ngram_share must be in (0, 1)")
        _check(not (self.bidirectional and self.initial_state == "learned"),
               "a learned initial state is for one-directional layers only")


@dataclass
class PreprocessConfig:
    """How raw text becomes token ids."""

    keep_emoji: bool = True
    min_freq: int = 1
    max_tokens: int = 200  # longer messages are cut; bounds memory on pathological input

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.min_freq >= 1, "min_freq must be at least 1")
        _check(self.max_tokens >= 1, "max_tokens must be at least 1")


@dataclass
class DataConfig:
    """Which columns and label names to read, and how to split."""

    text_column: str = "message"
    label_column: str = "sentiment"
    negative_label: str = "bearish"
    positive_label: str = "bullish"
    seed: int = 42
    group_duplicates: bool = False
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.negative_label != self.positive_label, "the two label names must differ")
        _check(0 <= self.seed < 2 ** 32, "seed must be between 0 and 4294967295")
        _check(self.val_fraction > 0 and self.test_fraction > 0
               and self.val_fraction + self.test_fraction < 1, "split fractions must leave a training set")


@dataclass
class TrainConfig:
    """Optimisation recipe."""

    loss: str = "bce"  # "bce" on logits, or "mse" on the sigmoid output as the article
    optimizer: str = "adamw"  # "adamw", "adam" or "adadelta"
    lr: float = 2e-3
    schedule: str = "constant"  # learning rate: "constant", or "linear" decay to zero by the last epoch
    weight_decay: float = 0.0
    rho: float = 0.95  # Adadelta; TensorFlow's default (PyTorch's is 0.9)
    eps: float = 1e-8  # TensorFlow's default for Adadelta and Adam
    sparse_embedding: bool = False  # update only the embedding rows in the batch
    average_decay: float = 0.0  # > 0: validate and save a moving average of the weights with this decay
    batch_size: int = 256
    epochs: int = 50
    patience: int = 0  # epochs without a better validation loss before stopping; 0 = never stop early
    grad_clip: float = 0.0  # 0 = no clipping
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # "auto" (a CUDA GPU when torch sees one), "cpu" or "cuda"
    bf16: bool = False  # bfloat16 autocast for the forward pass (GPUs with bf16 units)
    init: str = ""  # a pretrained language model (stocksent pretrain) whose vocabulary and layers to start from
    # Pretrain on the training split's texts (and any untagged ones) first: "none", "next-word" (the
    # embedding and LSTM layers as a language model) or "word2vec" (the embedding alone).
    pretraining: str = "none"
    layer_decay: float = 1.0  # each layer below the head learns at this times the rate of the one above
    unfreeze: bool = False  # gradual unfreezing: epoch 1 trains the head only, each later epoch one layer more
    warmup: float = 0.0  # share of the steps over which the rate rises linearly from 0 to lr
    ngram_c: float = 1.0  # the n-gram part's inverse L2 penalty (scikit-learn's C)
    ngram_min_count: int = 2  # n-grams in fewer training messages are left out of that part

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda")
        _check(self.loss in ("bce", "mse"), "loss must be bce or mse")
        _check(self.optimizer in ("adamw", "adam", "adadelta"), "optimizer must be adamw, adam or adadelta")
        _check(self.lr > 0, "lr must be positive")
        _check(self.schedule in ("constant", "linear"), "schedule must be constant or linear")
        _check(1 <= self.batch_size <= 65536, "batch_size must be between 1 and 65536")
        _check(1 <= self.epochs <= 10000, "epochs must be between 1 and 10000")
        _check(self.patience >= 0, "patience must be 0 or more")
        _check(0.0 <= self.average_decay < 1.0, "average_decay must be in [0, 1)")
        _check(self.pretraining in PRETRAINING, "pretraining must be none, next-word or word2vec")
        _check(0.0 < self.layer_decay <= 1.0, "layer_decay must be in (0, 1]")
        _check(0.0 <= self.warmup < 1.0, "warmup must be in [0, 1)")
        _check(self.ngram_c > 0, "ngram_c must be positive")
        _check(self.ngram_min_count >= 1, "ngram_min_count must be at least 1")


PRETRAINING = ("none", "next-word", "word2vec")


@dataclass
class PretrainConfig:
    """Training the embedding and LSTM layers as a language model on text without tags."""

    objective: str = "next-word"  # "next-word" (embedding and LSTM layers) or "word2vec" (the embedding alone)
    epochs: int = 2
    lr: float = 2e-3
    batch_size: int = 128
    grad_clip: float = 1.0
    held_out: float = 0.02  # share of the messages kept out to measure perplexity
    seed: int = 42
    cutoffs: list[int] = field(default_factory=lambda: [2000, 10000])  # adaptive softmax's word-frequency bands
    text_column: str = "message"
    threads: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.objective in ("next-word", "word2vec"), "objective must be next-word or word2vec")
        _check(1 <= self.epochs <= 1000, "epochs must be between 1 and 1000")
        _check(self.lr > 0, "lr must be positive")
        _check(1 <= self.batch_size <= 65536, "batch_size must be between 1 and 65536")
        _check(0 < self.held_out < 0.5, "held_out must be in (0, 0.5)")
        _check(0 <= self.seed < 2 ** 32, "seed must be between 0 and 4294967295")
        _check(all(c > 0 for c in self.cutoffs) and self.cutoffs == sorted(set(self.cutoffs)),
               "cutoffs must be increasing positive word counts")
        _check(self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda")


@dataclass
class Config:
    """Everything that defines a training run; saved as config.json beside the model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Config":
        try:
            return cls(
                model=ModelConfig(**raw["model"]),
                preprocess=PreprocessConfig(**raw["preprocess"]),
                data=DataConfig(**raw["data"]),
                train=TrainConfig(**raw["train"]),
                preset=raw.get("preset", "custom"),
            )
        except (KeyError, TypeError) as exc:
            raise StocksentError(f"config is not a stocksent config: {exc}") from None

    def override(self, section: str, **values: Any) -> "Config":
        """Return a copy with some fields of one section replaced (None values are skipped)."""
        values = {k: v for k, v in values.items() if v is not None}
        part = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **{section: part})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise StocksentError(message)


_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _check_types(section: Any) -> None:
    """Each field holds its annotated kind (an int where a float is asked is fine; a bool is not a
    number here), so that a config file or a keyword of the wrong kind is named, not a traceback."""
    for f in dataclasses.fields(section):
        value, kind = getattr(section, f.name), str(f.type)
        if kind == "list[int]":
            ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        else:
            ok = isinstance(value, _KINDS[kind]) and (kind == "bool" or not isinstance(value, bool))
        named = {"list[int]": "a list of ints", "int": "an int"}.get(kind, f"a {kind}")
        _check(ok, f"{f.name} must be {named}, not {value!r}")


def tutorial() -> Config:
    """The article's recipe: sigmoid + MSE, Adadelta 0.1, batch 256, 50 epochs, no early stop."""
    return Config(
        # As TensorFlow builds the article's network: Glorot-uniform LSTM and output weights, a
        # learned start state (the article left-pads with a trainable padding word, so each
        # message starts from the state that word leads to), and Adadelta applied only to the
        # embedding rows in the batch (TensorFlow's sparse update of an embedding lookup).
        model=ModelConfig(embedding_dim=300, lstm_sizes=[128, 64], dropout=0.5, forget_bias=1.0,
                          embedding_init="uniform", weight_init="glorot", initial_state="learned"),
        preprocess=PreprocessConfig(keep_emoji=False),
        train=TrainConfig(loss="mse", optimizer="adadelta", lr=0.1, sparse_embedding=True,
                          batch_size=256, epochs=50),
        preset="tutorial",
    )


def default() -> Config:
    """The best fast recipe we know: word vectors pretrained (word2vec) on the training split's
    own texts, then two LSTM networks trained side by side from them, each max-pooling its
    outputs over the words, their logits averaged; BCE, AdamW, early stopping on validation loss;
    then an NBSVM-style part over word 1-3 grams, blended half and half with the networks."""
    return Config(
        # Two networks of 96 rather than one of 128: members err differently, so their mean errs
        # less. Max over the words' outputs rather than the last word's. Word vectors learnt from
        # the text first, as the next-word model's layers did not help. docs/experiments.md gives
        # the runs over seeds behind each choice.
        model=ModelConfig(embedding_dim=96, lstm_sizes=[96], dropout=0.3, embedding_dropout=0.3,
                          forget_bias=1.0, embedding_init="normal", pooling="max", members=2, ngrams=3),
        preprocess=PreprocessConfig(keep_emoji=True, min_freq=2),
        train=TrainConfig(loss="bce", optimizer="adamw", lr=4.2e-3, weight_decay=0.05, sparse_embedding=True,
                          batch_size=128, epochs=8, patience=2, grad_clip=1.0, pretraining="word2vec"),
        preset="default",
    )


PRESETS = {"default": default, "tutorial": tutorial}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise StocksentError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()
