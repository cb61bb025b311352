"""Training runs on a data file: one run or one per seed, fresh or resumed, into a model directory.

The policy `stocksent train` follows lives here, so that Python callers get it too: which files
a run may replace, what may change when it is resumed, which data file a resumed run reads, the
device and precision fall-backs, and the statistics over seeds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .classifier import SentimentClassifier
from .config import Config, PretrainConfig
from .corpus import Corpus, CorpusCache, load_corpus
from .data import data_for_model, find_data
from .device import check_precision, resolve_device
from .distributed import World, barrier
from .errors import StocksentError
from .pretrain import pretrain, pretrain_settings, read_text_files, reusable, start_from, wants_pretraining
from .store import CONFIG, METRICS, read_json, write_json
from .train import CHECKPOINT, Log, Progress, Run, checkpoint_config, checkpoint_dataset, run_metrics, train_network

PRETRAINED = "pretrained"  # where train --unlabelled keeps its language model, inside --out
# What may change when a run is resumed: the network, the data and the recipe may not.
RESUMABLE = ("bf16", "device", "epochs", "patience", "threads")
SEEDS_FILE = "seeds.json"


def started(out: Path) -> bool:
    """Whether a training run has checkpointed an epoch in `out`."""
    return (out / CHECKPOINT / "state.json").exists()


def check_destination(out: Path, seeds: list[int] | None = None, resume: bool = False, force: bool = False) -> None:
    """Refuse to train over a model already in `out` (or OUT/seed-N) unless resuming or forced."""
    for folder in [out, *(out / f"seed-{seed}" for seed in seeds or [])]:
        if not resume and not force and ((folder / CONFIG).exists() or (folder / CHECKPOINT).exists()):
            raise StocksentError(f"{folder} already holds a model; use --resume to continue it, --force to "
                                 "replace it, or another --out")


def resumed_config(out: Path, asked: Config, named: set[str] | None = None, preset: str | None = None) -> Config:
    """The config of the run checkpointed in `out`, with the settings the resuming command names
    (`named`, field names, or None for a whole config such as a --config file; `preset` if it
    names one) taken from `asked`. A named setting whose value is the checkpoint's is fine; one
    that differs is refused, unless it is one of RESUMABLE."""
    saved = Config.from_dict(checkpoint_config(out))
    if preset is not None and preset != saved.preset:
        raise StocksentError(f"--preset cannot change on --resume (the checkpoint has {saved.preset!r}, "
                             f"this command {preset!r})")
    for section in ("model", "preprocess", "data", "train"):
        changes = {}
        for field in dataclasses.fields(getattr(saved, section)):
            if field.name == "vocab_size" or (named is not None and field.name not in named):
                continue
            old, new = getattr(getattr(saved, section), field.name), getattr(getattr(asked, section), field.name)
            if old != new and field.name not in RESUMABLE:
                raise StocksentError(f"{field.name} cannot change on --resume (the checkpoint has {old!r}, "
                                     f"this command {new!r}); only {', '.join(RESUMABLE)} may")
            changes[field.name] = new
        saved = saved.override(section, **changes)
    return saved


def training_corpus(config: Config, data: str | Path | None, out: Path, resume: bool) -> Corpus:
    """The data to train on; a resumed run reads the file it started with, and no other."""
    if not resume:
        return load_corpus(find_data(data), config.data, config.preprocess)
    started = checkpoint_dataset(out)
    corpus = load_corpus(data_for_model(data, started), config.data, config.preprocess)
    if started.get("sha256") and started["sha256"] != corpus.sha256:
        raise StocksentError(f"{corpus.source} is not the file this run started on (sha256 differs); "
                             f"resume with --data {started.get('source', 'FILE')}")
    return corpus


def for_world(config: Config, world: World, log: Log) -> Config:
    """The config as this device and process group can run it."""
    if world.backend == "nccl" and world.size > 1 and config.train.sparse_embedding:
        log("sparse embedding gradients cannot be all-reduced by NCCL; using dense updates")
        return config.override("train", sparse_embedding=False)
    return config


def train_file(config: Config, out: Path, data: str | Path | None = None, resume: bool = False,
               log: Log = print, bar: Callable | None = None, world: World = World(),
               on_epoch: Callable[[Progress], None] | None = None, corpus: Corpus | None = None) -> dict[str, Any]:
    """Train on the seeded split of a data file (or a corpus already read) into `out`, score
    validation and test, write metrics.json, and return the metrics (rank 0; others get {})."""
    config, pretrained = start_from(for_world(config, world, log))
    corpus = corpus or training_corpus(config, data, out, resume)
    run = Run.from_corpus(config, corpus, (pretrained.vocab, pretrained.body) if pretrained else None)
    sizes = run.sizes
    log(f"{corpus.source}: {len(corpus.texts)} messages ({corpus.dropped} empty after normalisation "
        f"dropped); train {sizes['train']}, val {sizes['val']}, test {sizes['test']}; vocabulary "
        f"{len(run.vocab)}; device {world.device}" + (f", {world.size} processes" if world.size > 1 else ""))
    trained = train_network(run, out, resume, log, bar, world, on_epoch)
    if not world.main:
        return {}
    metrics = run_metrics(run, trained)
    write_json(out / METRICS, metrics)
    return metrics


def _metrics(folder: Path) -> dict[str, Any]:
    path = folder / METRICS
    return read_json(path) if path.exists() else {}


def evaluate_split(clf: SentimentClassifier, data: str | Path | None = None, split: str = "test",
                   log: Log = print) -> dict[str, Any]:
    """Score a saved model on a split ("test" or "val") of the file it was trained on (or of
    `data`, split the same way; a file whose sha256 is not the model's is scored with a warning),
    or on every message of `data` ("all": a file of other messages, such as another market's)."""
    texts, labels = split_messages(clf, data, split, log)
    return clf.evaluate(texts, clf.classes_[labels])


def split_messages(clf: SentimentClassifier, data: str | Path | None = None, split: str = "test",
                   log: Log = print) -> tuple[list[str], np.ndarray]:
    """The texts and 0 / 1 labels `evaluate_split` scores."""
    if split == "all":
        if data is None:
            raise StocksentError("--split all scores a file of other messages: name it with --data")
        corpus = load_corpus(find_data(data), clf.config.data, clf.config.preprocess)
        return corpus.texts, corpus.labels
    return _splits(clf, data, (split,), log)[split]


def _splits(clf: SentimentClassifier, data: str | Path | None, names: tuple[str, ...], log: Log,
            corpora: CorpusCache | None = None) -> dict[str, tuple[list[str], np.ndarray]]:
    """The `names` splits of the file the model was trained on (or of `data`, split the same
    way): each one's texts and 0 / 1 labels. `corpora` keeps files read before."""
    dataset = clf.metrics.get("dataset", {})
    corpus = (corpora or CorpusCache()).load(data_for_model(data, dataset), clf.config.data, clf.config.preprocess)
    if dataset.get("sha256") and dataset["sha256"] != corpus.sha256:
        log(f"warning: {corpus.source} is not the file this model was trained on "
            "(sha256 differs); the split will not match training")
    elif not dataset.get("sha256"):
        what, risk = (("training", "may not be the data it was trained on") if "train" in names
                      else (names[0], "may hold messages it was trained on"))
        log(f"warning: this model records no data file (fitted in Python?); its {what} split is taken from "
            f"{corpus.source}, which {risk}")
    return {name: ([corpus.texts[i] for i in index], corpus.labels[index])
            for name, index in corpus.split(clf.config.data).items() if name in names}


def adapt_to(clf: SentimentClassifier, texts: list[str], data: str | Path | None = None, threshold: float = 0.9,
             rounds: int = 5, priors: bool = True, log: Log = print,
             corpora: CorpusCache | None = None) -> dict[str, Any]:
    """Adapt a saved model to a new market's `texts` (SentimentClassifier.adapt), beside the
    training split of the file it was trained on (or of `data`), then score its validation and
    test splits again; returns the metrics it now holds."""
    splits = _splits(clf, data, ("train", "val", "test"), log, corpora)
    train_texts, train_labels = splits["train"]
    clf.adapt(texts, (train_texts, clf.classes_[train_labels]), threshold, rounds, priors)
    for name in ("val", "test"):
        split_texts, split_labels = splits[name]
        clf.metrics_[name] = clf.evaluate(split_texts, clf.classes_[split_labels])
    return clf.metrics_


def pretrain_for(config: Config, out: Path, files: list[str], data: str | Path | None = None,
                 settings: PretrainConfig | None = None, log: Log = print, bar: Callable | None = None,
                 resume: bool = False, corpus: Corpus | None = None, world: World = World()) -> Config:
    """Pretrain on the training split's texts and `files` into OUT/pretrained (reused when it is
    there already, made from the same text and settings; continued when `resume` and it was
    interrupted), and return `config` set to start from it. Under torchrun rank 0 pretrains
    while the others wait, then they take up what it saved."""
    if not world.main:
        barrier(world)
        return pretrain_for(config, out, files, data, settings, log, bar, False, corpus)
    if config.train.init:
        raise StocksentError("give --unlabelled (pretrain here) or --init (start from a pretrained model), not both")
    check_precision(resolve_device(config.train.device), config.train.bf16)  # what training refuses, refused first
    corpus = corpus or load_corpus(find_data(data), config.data, config.preprocess)
    train = corpus.split(config.data)["train"]
    texts = [corpus.texts[i] for i in train] + read_text_files(files, config.data.text_column)
    settings = settings or pretrain_settings(config)
    folder = out / PRETRAINED
    if not reusable(folder, texts, config, settings):
        log(f"pretraining ({settings.objective}) on {len(train)} training messages"
            + (f" and {len(texts) - len(train)} from {', '.join(map(str, files))}" if files else ""))
        again = resume and started(folder)
        pretrain(texts, config.model, config.preprocess, settings, folder, again, log=log, bar=bar)
    else:
        log(f"{folder}: pretrained before on the same text and settings; reused")
    barrier(world)  # the other ranks wait for it
    return config.override("train", init=str(folder))


def train_seeds(config: Config, out: Path, seeds: list[int], data: str | Path | None = None,
                log: Log = print, bar: Callable | None = None, world: World = World(), resume: bool = False,
                named: set[str] | None = None, preset: str | None = None,
                unlabelled: list[str] | None = None) -> dict[str, Any]:
    """One run per seed into OUT/seed-N on one read of the data; the test metrics' mean and
    standard deviation over the seeds are written to OUT/seeds.json and returned. Resumed, the
    seeds already finished are read back, an interrupted one continues (`named` and `preset` as
    for resumed_config) and the others start. A seed that pretrains (`unlabelled` files, or the
    recipe's pretraining) does so on its own training split, into OUT/seed-N/pretrained."""
    if len(set(seeds)) < len(seeds):
        raise StocksentError("the seeds name a seed more than once")
    corpus: list[Corpus] = []  # read once, when a seed first starts afresh
    runs = {}
    for seed in seeds:
        folder, asked = out / f"seed-{seed}", config.override("data", seed=seed)
        finished = _metrics(folder) if resume else {}
        if "test" in finished:
            log(f"{folder}: finished before; its metrics are read back")
            runs[seed] = finished
        elif resume and (folder / CHECKPOINT).exists():
            runs[seed] = train_file(resumed_config(folder, asked, named, preset), folder, data, True, log, bar, world)
        else:
            corpus = corpus or [load_corpus(find_data(data), config.data, config.preprocess)]
            if wants_pretraining(asked, bool(unlabelled)):
                asked = pretrain_for(asked, folder, unlabelled or [], log=log, bar=bar, corpus=corpus[0], world=world)
            runs[seed] = train_file(asked, folder, log=log, bar=bar, world=world, corpus=corpus[0])
    if not world.main:
        return {}
    summary: dict[str, Any] = {"seeds": list(runs), "runs": {str(seed): m["test"] for seed, m in runs.items()}}
    for key in ("accuracy", "f1", "roc_auc"):
        values = np.array([m["test"][key] for m in runs.values()])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                        "values": values.tolist()}
    write_json(out / SEEDS_FILE, summary)
    return summary
