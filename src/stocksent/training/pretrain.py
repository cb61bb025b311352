"""Pretraining on messages without tags: a next-word language model (lm.py; its epochs and
checkpoints for --resume) or word vectors (word2vec.py), and the directory either is saved in:

    PRETRAINED_DIR/
      config.json        kind "language-model", the network's shape, preprocessing, pretraining
                         settings, sha256 of the weights
      vocab.json         the vocabulary, built from the pretraining text
      model.safetensors  the language model's weights (body.* are the classifier's layers)
      metrics.json       held-out loss and perplexity, message and word counts, seconds
      history.json       one row per epoch

A run may also start from a trained classifier's directory (fine-tuning it on new tags):
load_pretrained reads either kind, and adopt shapes the new run's config to it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from ..config import (
    FORMAT_VERSION,
    VERSION_1_PRETRAIN_RUNTIME,
    Config,
    DataConfig,
    ModelConfig,
    PreprocessConfig,
    PretrainConfig,
    TrainConfig,
)
from ..data.batches import bucket_batches, by_length, pad_batch
from ..data.corpus import tokenize_all
from ..data.store import (
    CONFIG,
    HISTORY,
    METRICS,
    VOCAB,
    WEIGHTS,
    load_model,
    read_json,
    read_metrics,
    read_weights,
    split_prefix,
    write_bytes,
    write_json,
)
from ..errors import StocksentError
from ..nets.device import resolve_device, to_device
from ..nets.lm import BODY, NextWordLSTM, body_state
from ..scoring.ngrams import NgramModel
from ..scoring.parts import network_state
from ..text.labels import spelled
from ..text.vocab import Vocab
from .optim import clip_gradients, make_optimizer
from .train import (
    RESUMABLE,
    Log,
    Progress,
    check_resumable,
    checkpoint_config,
    checkpoint_dataset,
    cpu_state,
    encode,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from .word2vec import train_vectors

KIND = "language-model"
CLASSIFIER = "classifier"  # what started a run from a trained classifier instead of an OBJECTIVES entry
# The fields of a trained classifier's config that a run started from it takes: its networks'
# shape and how they read a message (the rest of the recipe is the new run's own).
CLASSIFIER_SHAPE = ("embedding_dim", "lstm_sizes", "bidirectional", "initial_state", "pooling", "bigram_buckets",
                    "bigram_dim", "members")


@dataclass
class Pretrained:
    """What a run starts from: a language model's vocabulary, the shape of its layers and their
    weights (body_state); or a trained classifier's, its whole network, with its labels and the
    data it was trained on."""

    model: ModelConfig
    preprocess: PreprocessConfig
    vocab: Vocab
    body: dict[str, torch.Tensor]
    objective: str = "next-word"  # the OBJECTIVES entry that trained it, or CLASSIFIER
    labels: tuple[str, str] | None = None  # a classifier's negative and positive label
    dataset: dict[str, Any] = dataclasses.field(default_factory=dict)  # a classifier's data record (metrics.json)
    weights_sha256: str = ""
    data: DataConfig | None = None  # how a classifier read and split its data
    ngrams: NgramModel | None = None  # a classifier's n-gram part

    def vocabulary(self, messages: list[list[str]], min_freq: int) -> Vocab:
        """The vocabulary a run on `messages` uses: a language model's as it is; a
        classifier's with the words it lacks added (ids of its own words kept)."""
        return self.vocab.extended(messages, min_freq) if self.objective == CLASSIFIER else self.vocab


@dataclass(frozen=True)
class Objective:
    """One way to pretrain: what trains it, and what a classifier takes from it."""

    train: Callable[..., dict[str, torch.Tensor]]  # (_Text, config, out, resume, log, bar, device) -> layers
    shape: tuple[str, ...]  # the ModelConfig fields its layers fix in a classifier started from them
    perplexity: bool  # whether its loss is a next word's, so that perplexity means something
    defaults: dict[str, Any]  # its settings where they differ from PretrainConfig's


def _next_word(data: "_Text", cfg: PretrainConfig, out: Path | None, resume: bool, log: Log,
               bar: Callable | None, device: str) -> dict[str, torch.Tensor]:
    """The classifier's layers under a next-word softmax, epoch by epoch, each checkpointed in `out`."""
    torch.manual_seed(cfg.seed)
    model = NextWordLSTM(data.shape, cfg.cutoffs).to(device)
    optimizer = make_optimizer(model, TrainConfig(lr=cfg.lr, sparse_embedding=True, grad_clip=cfg.grad_clip))
    if resume:
        _check_same_run(out, data, cfg)
    progress = load_checkpoint(out, model, optimizer) if resume else Progress()
    if resume:
        log(f"resuming after epoch {progress.epoch} of {cfg.epochs}")
    for epoch in progress.epochs(cfg.epochs):
        started = time.perf_counter()
        loss = _train_epoch(model, optimizer, data, cfg, epoch, bar)
        held_out = _held_out_loss(model, data)
        progress.record({"loss": loss, "perplexity": math.exp(loss), "val_loss": held_out,
                         "val_perplexity": math.exp(held_out)}, held_out, time.perf_counter() - started)
        log(_epoch_line(progress, cfg.epochs))
        if out is not None:
            save_pretrained(out, data, cpu_state(model), progress, cfg)
            save_checkpoint(out, _saved_config(data, cfg), data.dataset, model, optimizer, progress)
    return body_state(cpu_state(model))


def _word2vec(data: "_Text", cfg: PretrainConfig, out: Path | None, resume: bool, log: Log,
              bar: Callable | None, device: str) -> dict[str, torch.Tensor]:
    """The embedding alone under word2vec's skip-gram, by gensim; saved once done (its seconds are
    not worth a checkpoint: --resume trains it again)."""
    if resume:
        log("word2vec keeps no checkpoint: it trains again")
    progress = Progress()

    def on_epoch(row: dict[str, float], seconds: float) -> None:
        progress.record(row, row["val_loss"], seconds)
        log(_epoch_line(progress, cfg.epochs))

    table = train_vectors(data.encoded, data.vocab, data.shape.embedding_dim, cfg.epochs, cfg.lr, cfg.seed, on_epoch)
    body = {"embedding.weight": torch.from_numpy(table)}
    if out is not None:
        save_pretrained(out, data, {BODY + name: tensor for name, tensor in body.items()}, progress, cfg)
    return body


OBJECTIVES = {
    "next-word": Objective(_next_word, ("embedding_dim", "lstm_sizes", "initial_state"), True, {}),
    # lr: gensim's starting rate, falling linearly to nearly 0 by the last epoch (docs/performance.md).
    "word2vec": Objective(_word2vec, ("embedding_dim",), False, {"epochs": 5, "lr": 0.1}),
}


def wants_pretraining(config: Config, untagged: bool) -> bool:
    """Whether training with `config` pretrains first: untagged text is given, or the recipe
    pretrains on its own training text (and starts from no pretrained model already)."""
    return untagged or (config.train.pretraining != "none" and not config.run.init)


def pretrain_settings(config: Config, **given: Any) -> PretrainConfig:
    """How a classifier's config pretrains: its objective (untagged text given to a recipe that
    does not pretrain: next-word), that objective's settings and its seed; `given` settings win."""
    objective = given.pop("objective", config.train.pretraining)
    objective = "next-word" if objective == "none" else objective
    defaults = OBJECTIVES[objective].defaults if objective in OBJECTIVES else {}  # else PretrainConfig refuses it
    return PretrainConfig(**{"objective": objective, "seed": config.data.seed, **defaults, **given})


def read_text_files(paths: Iterable[str | Path], column: str = "message") -> list[str]:
    """Every message of CSV, JSONL or Parquet files (their `column`) or plain text (a line each)."""
    from ..data.table import read_texts

    return [text for path in paths for text in read_texts(Path(path), column)]


def pretrain(texts: list[str], shape: ModelConfig, prep: PreprocessConfig, cfg: PretrainConfig,
             out: Path | None = None, resume: bool = False, log: Log = print,
             bar: Callable | None = None, device: str = "auto") -> Pretrained:
    """Train the layers of `shape` to predict each next word of `texts` (a held-out share scored
    after each epoch) on `device`; with `out`, every epoch is checkpointed there and the model saved."""
    return pretrain_tokens(tokenize_all(texts, prep)[0], shape, prep, cfg, out, resume, log, bar, device)


def pretrain_tokens(tokens: list[list[str]], shape: ModelConfig, prep: PreprocessConfig, cfg: PretrainConfig,
                    out: Path | None = None, resume: bool = False, log: Log = print,
                    bar: Callable | None = None, device: str = "auto") -> Pretrained:
    """`pretrain` on messages already normalised and tokenised with `prep`."""
    device = resolve_device(device)
    data = _Text.prepare(tokens, shape, prep, cfg)
    log(f"pretraining on {len(data.encoded['train'])} messages ({data.words:,} words; "
        f"{len(data.encoded['held_out'])} held out); vocabulary {len(data.vocab)}; device {device}")
    body = OBJECTIVES[cfg.objective].train(data, cfg, out, resume, log, bar, device)
    return Pretrained(data.shape, prep, data.vocab, body, cfg.objective)


# Those of RESUMABLE a pretraining has: its epochs, and where it runs (it has no bfloat16 mode).
RESUMABLE_HERE = tuple(name for name in RESUMABLE if name not in ("patience", "stop_margin", "bf16"))


def _recipe(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved "pretrain" section without the runtime settings format version 1 kept in it."""
    return {k: v for k, v in saved.items() if k not in VERSION_1_PRETRAIN_RUNTIME}


def _check_same_run(out: Path | None, data: "_Text", cfg: PretrainConfig) -> None:
    """A resumed pretraining reads the same text with the same settings and shape, but for RESUMABLE_HERE."""
    if out is None:
        raise StocksentError("resuming needs the directory the pretraining was saved in")
    started = checkpoint_dataset(out).get("sha256")
    if started and started != data.dataset["sha256"]:
        raise StocksentError(f"{out}: this text is not the text the pretraining started on; resume with the same files")
    saved, asked = checkpoint_config(out), _saved_config(data, cfg)
    saved["pretrain"] = _recipe(saved.get("pretrain", {}))
    for section in ("pretrain", "preprocess", "model"):  # the settings first: they decide the vocabulary
        for name, old in saved.get(section, {}).items():
            check_resumable(name, old, asked[section].get(name), RESUMABLE_HERE)


@dataclass
class _Text:
    """The pretraining text, tokenised, split into training and held-out messages, and encoded."""

    shape: ModelConfig
    prep: PreprocessConfig
    vocab: Vocab
    encoded: dict[str, list[np.ndarray]]
    dataset: dict[str, Any]

    @classmethod
    def prepare(cls, tokens: list[list[str]], shape: ModelConfig, prep: PreprocessConfig,
                cfg: PretrainConfig) -> "_Text":
        usable = [t for t in tokens if len(t) >= 2]  # a next word to predict
        if len(usable) < 2:
            raise StocksentError("too little text to pretrain on: give messages of two words or more")
        order = np.random.default_rng(cfg.seed).permutation(len(usable))
        cut = max(1, int(len(usable) * cfg.held_out))
        parts = {"held_out": [usable[i] for i in np.sort(order[:cut])],
                 "train": [usable[i] for i in np.sort(order[cut:])]}
        vocab = Vocab.build(parts["train"], prep.min_freq)
        return cls(dataclasses.replace(shape, vocab_size=len(vocab), members=1), prep, vocab,
                   {name: encode(vocab, part) for name, part in parts.items()},
                   {"messages": len(tokens), "usable": len(usable), "sha256": tokens_sha256(tokens)})

    @property
    def words(self) -> int:
        return int(sum(len(e) for e in self.encoded["train"]))


def _train_epoch(model: NextWordLSTM, optimizer: Any, data: _Text, cfg: PretrainConfig, epoch: int,
                 bar: Callable | None) -> float:
    model.train()
    device = next(model.parameters()).device
    lengths = np.fromiter(map(len, data.encoded["train"]), dtype=np.int64)
    batches = bucket_batches(lengths, cfg.batch_size, seed_everything(cfg.seed, epoch))
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0.0
    for index in bar(batches) if bar else batches:
        tokens, sizes = to_device(device, *pad_batch(data.encoded["train"], index))
        nll, words = model(tokens, sizes)
        loss = nll / words.clamp(min=1)  # mean over the words predicted
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, cfg.grad_clip)
        optimizer.step()
        total += nll.detach()
        count += float(words)
    return float(total) / max(count, 1.0)


@torch.inference_mode()
def _held_out_loss(model: NextWordLSTM, data: _Text) -> float:
    model.eval()
    device = next(model.parameters()).device
    encoded = data.encoded["held_out"]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64)
    total, count = 0.0, 0.0
    for index in by_length(lengths, 512):
        nll, words = model(*to_device(device, *pad_batch(encoded, index)))
        total, count = total + float(nll), count + float(words)
    return total / max(count, 1.0)


def _epoch_line(progress: Progress, epochs: int) -> str:
    row = progress.history[-1]
    if "perplexity" not in row:  # word2vec's loss per pair is no word's probability
        return f"epoch {row['epoch']:>3}/{epochs}  held-out loss {row['val_loss']:.4f}  ({row['seconds']:.0f} s)"
    return (f"epoch {row['epoch']:>3}/{epochs}  loss {row['loss']:.4f}  perplexity {row['perplexity']:.1f}  "
            f"held-out loss {row['val_loss']:.4f}  perplexity {row['val_perplexity']:.1f}  ({row['seconds']:.0f} s)")


def _saved_config(data: _Text, cfg: PretrainConfig) -> dict[str, Any]:
    return _saved_config_of(data.shape, data.prep, cfg)


def _saved_config_of(shape: ModelConfig, prep: PreprocessConfig, cfg: PretrainConfig) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "kind": KIND, "model": dataclasses.asdict(shape),
            "preprocess": dataclasses.asdict(prep), "pretrain": dataclasses.asdict(cfg)}


def save_pretrained(out: Path, data: _Text, state: dict[str, torch.Tensor], progress: Progress,
                    cfg: PretrainConfig) -> None:
    """The last epoch's weights (`state`, on the CPU) as a pretrained directory; config.json,
    naming the weights' checksum, is written last, so a crash leaves the previous epoch's model
    or this one."""
    out.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors(state)
    write_bytes(out / WEIGHTS, weights)
    write_json(out / VOCAB, data.vocab.to_dict())
    write_json(out / HISTORY, progress.history)
    last = progress.history[-1]
    held_out = {name: last[name] for name in ("val_loss", "val_perplexity") if name in last}
    write_json(out / METRICS, {**held_out, "words": data.words, **data.dataset,
                               "seconds": round(sum(row["seconds"] for row in progress.history), 1)})
    write_json(out / CONFIG, {**_saved_config(data, cfg), "weights_sha256": hashlib.sha256(weights).hexdigest()})


def tokens_sha256(tokens: list[list[str]]) -> str:
    """A checksum of tokenised messages: what a pretraining read, whatever files it came from."""
    return hashlib.sha256("\n".join(" ".join(t) for t in tokens).encode()).hexdigest()


def reusable(folder: Path, tokens: list[list[str]], config: Config, settings: PretrainConfig) -> bool:
    """Whether `folder` holds a finished pretraining of these messages (tokenised with
    config.preprocess) with these settings and shape."""
    try:
        raw, metrics = read_json(folder / CONFIG), read_json(folder / METRICS)
        history = read_json(folder / HISTORY)
    except StocksentError:
        return False
    wanted = _saved_config_of(dataclasses.replace(config.model, members=1), config.preprocess, settings)
    return (_deciding(raw) == _deciding(wanted) and metrics.get("sha256") == tokens_sha256(tokens)
            and len(history) == settings.epochs)


def _deciding(saved: dict[str, Any]) -> dict[str, Any]:
    """What decides a pretraining's result: not the vocabulary size it found, nor where it ran."""
    return {"model": {k: v for k, v in saved.get("model", {}).items() if k != "vocab_size"},
            "preprocess": saved.get("preprocess"), "pretrain": _recipe(saved.get("pretrain", {}))}


def adopt(config: Config, pretrained: Pretrained, source: str = "") -> Config:
    """`config` with the pretrained model's layer sizes and the preprocessing its vocabulary was
    built with (a classifier can only start from layers of its own shape)."""
    if pretrained.labels is not None:
        config = _same_labels(config, pretrained.labels, source)
    names = CLASSIFIER_SHAPE if pretrained.objective == CLASSIFIER else OBJECTIVES[pretrained.objective].shape
    if "lstm_sizes" in names and config.model.bidirectional and pretrained.objective != CLASSIFIER:
        raise StocksentError("a pretrained model's layers read forwards only: start from it without "
                             "--bidirectional")
    shape = {name: getattr(pretrained.model, name) for name in names}
    if pretrained.ngrams is not None and config.train.ngram_from_source and config.model.ngrams:
        shape["ngrams"] = pretrained.ngrams.longest  # the part it corrects reads n-grams this long
    prep = {name: getattr(pretrained.preprocess, name) for name in ("keep_emoji", "max_tokens")}
    config = config.override("model", **shape).override("preprocess", **prep)
    return config.override("run", init=source) if source else config


def _same_labels(config: Config, labels: tuple[str, str], source: str) -> Config:
    """`config` reading the trained classifier's two labels (as data files spell them: any case),
    or one line saying they differ."""
    asked = (config.data.negative_label, config.data.positive_label)
    if tuple(map(spelled, asked)) != tuple(map(spelled, labels)):
        raise StocksentError(f"{source or 'the model started from'} tells {labels[0]!r} from {labels[1]!r}, not "
                             f"{asked[0]!r} from {asked[1]!r}: a model started from it reads the same two labels")
    return config.override("data", negative_label=labels[0], positive_label=labels[1])


def classifier_labels(folder: str | Path) -> tuple[str, str] | None:
    """The two labels of the trained classifier in `folder`, or None when it holds none (a
    language model, or nothing readable)."""
    try:
        raw = read_json(Path(folder) / CONFIG)
    except StocksentError:
        return None
    labels = raw.get("labels") if isinstance(raw, dict) and "kind" not in raw else None
    return (str(labels[0]), str(labels[1])) if isinstance(labels, list) and len(labels) == 2 else None


def start_from(config: Config) -> tuple[Config, Pretrained | None]:
    """`config` shaped to start from the pretrained model its `init` names, and that model (the
    config as it is and None when it names none)."""
    if not config.run.init:
        return config, None
    pretrained = load_pretrained(config.run.init)
    return adopt(config, pretrained, config.run.init), pretrained


def load_pretrained(folder: str | Path) -> Pretrained:
    """A pretrained directory's shape, preprocessing, vocabulary and classifier layers; or a
    trained classifier's (load_classifier)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StocksentError(f"pretrained model not found: {folder}")
    raw = read_json(folder / CONFIG)
    if isinstance(raw, dict) and "labels" in raw and "kind" not in raw:
        return load_classifier(folder)
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise StocksentError(f"{folder} is neither a pretrained language model (stocksent pretrain) nor a trained "
                             "classifier (stocksent train)")
    try:
        shape, prep = ModelConfig(**raw["model"]), PreprocessConfig(**raw["preprocess"])
        objective = PretrainConfig(**_recipe(raw["pretrain"])).objective
    except (KeyError, TypeError, AttributeError) as exc:
        raise StocksentError(f"{folder / CONFIG}: not a stocksent pretraining config ({exc})") from None
    vocab = Vocab.from_dict(read_json(folder / VOCAB))
    if len(vocab) != shape.vocab_size:
        raise StocksentError(f"{folder}: vocab.json has {len(vocab)} tokens but the model expects {shape.vocab_size}")
    return Pretrained(shape, prep, vocab, body_state(read_weights(folder / WEIGHTS, raw.get("weights_sha256"))),
                      objective)


def load_classifier(folder: Path) -> Pretrained:
    """A trained classifier as a run's start: its network and n-gram part (which the run's
    corrects; its other parts are fitted again), vocabulary, labels and the record of its data."""
    config, vocab, state = load_model(folder)
    ngrams = NgramModel.restore(split_prefix(state, NgramModel.prefix)[1], config, str(folder))[0]
    return Pretrained(config.model, config.preprocess, vocab, network_state(state), CLASSIFIER,
                      (config.data.negative_label, config.data.positive_label),
                      read_metrics(folder).get("dataset", {}), read_json(folder / CONFIG)["weights_sha256"],
                      config.data, ngrams)
