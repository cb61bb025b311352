"""Typed configuration: model, preprocessing, data, training, and the named presets."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import StocksentError

FORMAT_VERSION = 2  # 2: the runtime settings in their own section, "run"
READABLE_VERSIONS = (1, 2)
MAX_WIDTH = 4096  # embedding and layer sizes: wider than this is a typo on any machine this runs on


def setting(default: Any, help: str, flag: str | None = "", *, negatable: bool = True) -> Any:
    """A config field with its help text: the command line's flag for it is `flag`, by default `--`
    and the field's name with dashes; None: it has none. A bool field's flag turns it on, and its
    `--no-` form off unless `negatable` is False. A list default is copied for each config."""
    metadata = {"help": help, "flag": flag, "negatable": negatable}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelConfig:
    """Shape of the network; `vocab_size` is filled in once the vocabulary is built."""

    vocab_size: int = setting(0, "words in the vocabulary, filled in once it is built", flag=None)
    embedding_dim: int = setting(300, "embedding size")
    lstm_sizes: list[int] = setting([128, 64], "LSTM layer sizes, e.g. --lstm-sizes 128 64")
    dropout: float = setting(0.5, "dropout after each LSTM layer (1 - keep probability)")  # the article's: 0.5
    embedding_dropout: float = setting(0.0, "dropout on the word vectors, before the first LSTM layer")
    forget_bias: float = setting(1.0, "initial forget-gate bias")  # TensorFlow's LSTM cell adds 1.0 to the forget gate
    embedding_init: str = setting("uniform", "uniform (-1, 1), as the article, or normal (PyTorch's)")
    weight_init: str = setting("pytorch", "LSTM and output weights: pytorch or glorot (TensorFlow's)")
    initial_state: str = setting("zero", "LSTM state before the first word: zero or learned (per layer)")
    pooling: str = setting("last", "what the head reads: last (word's output), max or mean over words")
    bidirectional: bool = setting(False, "each LSTM layer also reads each message backwards")
    bigram_buckets: int = setting(0, "also feed the head a bag of word pairs hashed into this many rows (0: off)")
    bigram_dim: int = setting(16, "size of a word pair's vector in that bag")
    members: int = setting(1, "train this many networks side by side, each from its own initialisation on its "
                              "own loss, and score their mean logit")
    # > 0: beside the network, a linear model over the word 1..ngrams-grams a message holds (ngrams.py),
    # fitted once the network is trained; the logit is (1 - ngram_share) network + ngram_share part.
    ngrams: int = setting(0, "blend in a linear model over the word 1..N-grams a message holds, fitted after the "
                             "network (NBSVM's recipe; 0: off)")
    ngram_share: float = setting(0.5, "the n-gram model's share of the blended logit")

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

    keep_emoji: bool = setting(True, "keep emoji as tokens (default preset: on; tutorial: off, as the article)",
                               flag="--emoji")
    min_freq: int = setting(1, "drop words seen fewer times in training")
    max_tokens: int = setting(200, "cut messages longer than this")  # bounds memory on pathological input

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.min_freq >= 1, "min_freq must be at least 1")
        _check(self.max_tokens >= 1, "max_tokens must be at least 1")


@dataclass
class DataConfig:
    """Which columns and label names to read, and how to split."""

    text_column: str = setting("message", "column holding the message text")
    label_column: str = setting("sentiment", "column holding the label")
    negative_label: str = setting("bearish", "label value meaning negative (class 0)")
    positive_label: str = setting("bullish", "label value meaning positive (class 1)")
    seed: int = setting(42, "seed of the split, initialisation and batch order")
    group_duplicates: bool = setting(False, "keep every copy of a message text in one split", negatable=False)
    val_fraction: float = setting(0.1, "share of messages for validation")
    test_fraction: float = setting(0.1, "share of messages for test")

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.negative_label != self.positive_label, "the two label names must differ")
        _check(0 <= self.seed < 2 ** 32, "seed must be between 0 and 4294967295")
        _check(self.val_fraction > 0 and self.test_fraction > 0
               and self.val_fraction + self.test_fraction < 1, "split fractions must leave a training set")


@dataclass
class TrainConfig:
    """Optimisation recipe."""

    loss: str = setting("bce", "bce (on logits) or mse (on the sigmoid, as the article)")
    optimizer: str = setting("adamw", "adamw, adam or adadelta")
    lr: float = setting(2e-3, "learning rate")
    schedule: str = setting("constant", "learning rate: constant, or linear (decays to zero by the last epoch)")
    weight_decay: float = setting(0.0, "weight decay")
    rho: float = setting(0.95, "Adadelta's decay rate")  # TensorFlow's default (PyTorch's is 0.9)
    eps: float = setting(1e-8, "the optimizer's epsilon")  # TensorFlow's default for Adadelta and Adam
    sparse_embedding: bool = setting(False, "update only the embedding rows in each batch (default and tutorial "
                                            "presets: on)")
    average_decay: float = setting(0.0, "validate with a moving average of the weights with this decay, e.g. "
                                        "0.999, and save it (0: off)")
    batch_size: int = setting(256, "messages per batch")
    epochs: int = setting(50, "maximum number of epochs")
    patience: int = setting(0, "stop after this many epochs without a better validation loss (0: never)")
    stop_margin: float = setting(0.0, "also stop after an epoch whose validation loss is more than this share above "
                                      "the best, e.g. 0.01 (0: patience alone)")
    grad_clip: float = setting(0.0, "clip the gradient norm (0: off)")
    pretraining: str = setting("none", "pretrain on the training split's texts (and --unlabelled files) first: "
                                       "none, next-word (the embedding and LSTM layers as a language model; what "
                                       "--unlabelled alone does) or word2vec (the embedding alone)")
    layer_decay: float = setting(1.0, "each layer below the head learns at this times the rate of the one above, "
                                      "e.g. 0.4 with --init (1: all alike)")
    unfreeze: bool = setting(False, "gradual unfreezing, with --init: epoch 1 trains the head only, each later "
                                    "epoch one layer more")
    warmup: float = setting(0.0, "share of the steps over which the learning rate rises linearly from 0 to --lr "
                                  "(0: none)")
    balanced: bool = setting(False, "weigh each label's messages so that both labels count alike in the loss, "
                                    "early stopping and the n-gram part (for data that lean one way, where "
                                    "macro-F1 matters)")
    source_mix: float = setting(0.0, "with --init of a trained classifier: also train on this many of its own "
                                     "training messages per new one, drawn by the seed, so that it does not forget "
                                     "them (0: none)")
    ngram_from_source: bool = setting(True, "with --init of a trained classifier: fit the n-gram part as "
                                            "corrections to its own, which the penalty pulls to none, rather than "
                                            "anew on this data alone")
    ngram_c: float = setting(1.0, "the n-gram model's inverse L2 penalty (scikit-learn's C)")
    ngram_min_count: int = setting(2, "leave the n-grams found in fewer training messages than this out of the "
                                      "n-gram model")

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.loss in ("bce", "mse"), "loss must be bce or mse")
        _check(self.optimizer in ("adamw", "adam", "adadelta"), "optimizer must be adamw, adam or adadelta")
        _check(self.lr > 0, "lr must be positive")
        _check(self.schedule in ("constant", "linear"), "schedule must be constant or linear")
        _check(1 <= self.batch_size <= 65536, "batch_size must be between 1 and 65536")
        _check(1 <= self.epochs <= 10000, "epochs must be between 1 and 10000")
        _check(self.patience >= 0, "patience must be 0 or more")
        _check(0.0 <= self.stop_margin < 1.0, "stop_margin must be in [0, 1)")
        _check(0.0 <= self.average_decay < 1.0, "average_decay must be in [0, 1)")
        _check(self.pretraining in PRETRAINING, "pretraining must be none, next-word or word2vec")
        _check(0.0 < self.layer_decay <= 1.0, "layer_decay must be in (0, 1]")
        _check(0.0 <= self.warmup < 1.0, "warmup must be in [0, 1)")
        _check(0.0 <= self.source_mix <= 100.0, "source_mix must be between 0 and 100")
        _check(self.ngram_c > 0, "ngram_c must be positive")
        _check(self.ngram_min_count >= 1, "ngram_min_count must be at least 1")


PRETRAINING = ("none", "next-word", "word2vec")


@dataclass
class PretrainConfig:
    """Training the embedding and LSTM layers as a language model on text without tags."""

    objective: str = setting("next-word", "next-word (the embedding and LSTM layers, the default) or word2vec "
                                          "(skip-gram: the embedding alone, cheaper)")
    epochs: int = setting(2, "passes over the text (default 2; word2vec 5)")
    lr: float = setting(2e-3, "AdamW's learning rate (default 0.002); word2vec's first, falling linearly (0.1)")
    batch_size: int = setting(128, "messages per batch (default 128)")
    grad_clip: float = setting(1.0, "clip the gradient norm at this (default 1)")
    held_out: float = setting(0.02, "share of messages kept out to measure perplexity (default 0.02)")
    seed: int = setting(42, "seed of the held-out share, initialisation and batch order (default 42)")
    cutoffs: list[int] = setting([2000, 10000], "the adaptive softmax's word-frequency bands: the most frequent "
                                                "words, the next ones, the rest (default 2000 10000)")

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.objective in ("next-word", "word2vec"), "objective must be next-word or word2vec")
        _check(1 <= self.epochs <= 1000, "epochs must be between 1 and 1000")
        _check(self.lr > 0, "lr must be positive")
        _check(1 <= self.batch_size <= 65536, "batch_size must be between 1 and 65536")
        _check(self.grad_clip > 0, "grad_clip must be positive")
        _check(0 < self.held_out < 0.5, "held_out must be in (0, 0.5)")
        _check(0 <= self.seed < 2 ** 32, "seed must be between 0 and 4294967295")
        _check(all(c > 0 for c in self.cutoffs) and self.cutoffs == sorted(set(self.cutoffs)),
               "cutoffs must be increasing positive word counts")


@dataclass
class RunConfig:
    """Where a run computes and what it starts from: not the recipe. config.json records them in
    their own section; a resumed run may change all but `init`, and a pretraining reused for
    another run need not have run where it does."""

    threads: int = setting(0, "torch CPU threads (0: torch's default)")
    device: str = setting("auto", "auto (a CUDA GPU when present), cpu or cuda")
    bf16: bool = setting(False, "bfloat16 autocast in the training steps' forward pass, where the device computes "
                                "it natively (a CUDA GPU from Ampere on, a CPU with AVX-512 BF16 or AMX); float32 "
                                "elsewhere (default preset: on)")
    init: str = setting("", "start from a trained classifier (stocksent train --out DIR), fine-tuning its "
                            "networks on this data, its vocabulary grown by the data's words; or from a "
                            "pretrained language model (stocksent pretrain --out DIR): its vocabulary, "
                            "embedding and LSTM layers")

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.threads >= 0, "threads must be 0 (torch's default) or more")
        _check(self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda")


# Where format version 1 kept the fields of RunConfig, and the pretraining's runtime settings it saved.
_VERSION_1_RUN = {"train": ("threads", "device", "bf16", "init")}
VERSION_1_PRETRAIN_RUNTIME = ("threads", "device", "text_column")


@dataclass
class Config:
    """Everything that defines a training run; saved as config.json beside the model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Config":
        """The config a config.json (format version 1 or 2) or a checkpoint holds."""
        try:
            raw = _run_section(raw)
            return cls(
                model=ModelConfig(**raw["model"]),
                preprocess=PreprocessConfig(**raw["preprocess"]),
                data=DataConfig(**raw["data"]),
                train=TrainConfig(**raw["train"]),
                run=RunConfig(**raw["run"]),
                preset=raw.get("preset", "custom"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise StocksentError(f"config is not a stocksent config: {exc}") from None

    def override(self, section: str, **values: Any) -> "Config":
        """Return a copy with some fields of one section replaced (None values are skipped)."""
        values = {k: v for k, v in values.items() if v is not None}
        part = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **{section: part})


def _run_section(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with its runtime settings in a "run" section, as version 1 did not keep them."""
    if "run" in raw:
        return raw
    raw = {**raw, "run": {}}
    for section, names in _VERSION_1_RUN.items():
        kept = dict(raw[section])
        raw["run"].update({name: kept.pop(name) for name in names if name in kept})
        raw[section] = kept
    return raw


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
    """The best fast recipe we know: word vectors pretrained (gensim's word2vec) on the training
    split's own texts, then two LSTM networks trained side by side from them, each max-pooling
    its outputs over the words, their logits averaged; BCE, AdamW at a rate falling to zero over
    four epochs (in bfloat16 where the machine has it), early stopping on validation loss; then
    an NBSVM-style part over word 1-3 grams, blended half and half with the networks."""
    return Config(
        # Two networks of 96 rather than one of 128: members err differently, so their mean errs
        # less. Max over the words' outputs rather than the last word's. Word vectors learnt from
        # the text first, as the next-word model's layers did not help. A rate falling to zero
        # over four epochs ends where a constant one peaks after five or six, none trained to be
        # thrown away. The training steps in bfloat16 where the machine multiplies it natively:
        # the LSTM kernels run faster, the accuracy is the same. docs/experiments.md and
        # docs/performance.md give the runs behind each choice.
        model=ModelConfig(embedding_dim=96, lstm_sizes=[96], dropout=0.3, embedding_dropout=0.3,
                          forget_bias=1.0, embedding_init="normal", pooling="max", members=2, ngrams=3),
        preprocess=PreprocessConfig(keep_emoji=True, min_freq=2),
        train=TrainConfig(loss="bce", optimizer="adamw", lr=4.2e-3, weight_decay=0.05, sparse_embedding=True,
                          batch_size=128, epochs=4, schedule="linear", patience=2, stop_margin=0.01, grad_clip=1.0,
                          pretraining="word2vec"),
        run=RunConfig(bf16=True),
        preset="default",
    )


def finetune() -> Config:
    """The default's recipe for fine-tuning a trained classifier (--init MODEL_DIR) on a market's own
    few tags: both labels weighed alike, and up to 50 epochs with early stopping."""
    # Markets lean one way; weighed as they come, a few tags teach the networks their prior and
    # little else, and the source's bearish messages are forgotten. A few thousand tags make
    # short epochs, so more of them are allowed. docs/finetune.md gives the runs behind both, in
    # float32.
    config = default().override("train", balanced=True, epochs=50, schedule="constant", patience=3, stop_margin=0.0)
    config = config.override("run", bf16=False)
    return dataclasses.replace(config, preset="finetune")


PRESETS = {"default": default, "tutorial": tutorial, "finetune": finetune}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise StocksentError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()


SECTION_NAMES = ("model", "preprocess", "data", "train", "run")
# Every field a keyword of SentimentClassifier may set (all but what the vocabulary fills in), and its section.
FIELDS: dict[str, str] = {f.name: section for section in SECTION_NAMES
                          for f in dataclasses.fields(getattr(Config(), section)) if f.name != "vocab_size"}


def check_fields(names: Iterable[str]) -> None:
    """A TypeError naming any of `names` that is no field of FIELDS."""
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown hyperparameter(s) {', '.join(unknown)}; SentimentClassifier takes preset, "
                        f"verbose and the config fields: {', '.join(sorted(FIELDS))}")


def with_fields(name: str, values: dict[str, Any]) -> Config:
    """The preset `name` with these fields (of FIELDS) set, validated."""
    config = preset(name)
    for field_name, value in values.items():
        config = config.override(FIELDS[field_name], **{field_name: value})
    return config


def as_fields(config: Config) -> tuple[str, dict[str, Any]]:
    """The preset `config` starts from and its fields that differ from it: what with_fields
    needs to build it again."""
    name = config.preset if config.preset in PRESETS else "default"
    base = preset(name).to_dict()
    return name, {field: value for section, values in config.to_dict().items() if isinstance(values, dict)
                  for field, value in values.items() if field in FIELDS and base[section].get(field) != value}
