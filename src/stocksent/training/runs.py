"""Training runs: the one way a classifier is trained, whoever asks (`fit`, `stocksent train`, its
seeds loop, `tune`), and the policy around it, so that Python callers get it too:

    train_run    one run: pretraining first when the recipe asks, then the networks and their
                 parts, fresh or resumed, into a model directory or in memory
    train_file   `stocksent train`: one run, or one per seed, on a data file, fresh or resumed

which files a run may replace, what may change when it is resumed, which data file a resumed run
reads, the device fall-backs, and the statistics over seeds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SECTION_NAMES, Config
from ..data.corpus import Corpus, CorpusCache, tokenize_all
from ..data.dataset import data_for_model, file_sha256, find_data, split_files
from ..data.split import split_messages
from ..data.store import CONFIG, HISTORY, METRICS, WEIGHTS, read_json, write_json
from ..errors import StocksentError, UnknownLabels
from ..nets.device import bf16_used, threads
from ..nets.distributed import World, barrier
from ..scoring.predictor import Predictor
from ..text.labels import known_codes, text_list
from .pretrain import (
    CLASSIFIER,
    Pretrained,
    adopt,
    pretrain_settings,
    pretrain_tokens,
    read_text_files,
    reusable,
    start_from,
    wants_pretraining,
)
from .train import (
    CHECKPOINT,
    Labelled,
    Log,
    Progress,
    Run,
    Trained,
    check_resumable,
    checkpoint_config,
    checkpoint_dataset,
    nothing_to_resume,
    run_metrics,
    train_network,
)

PRETRAINED = "pretrained"  # where a run keeps the layers it pretrained, inside its directory
SEEDS_FILE = "seeds.json"


@dataclass
class Messages:
    """What one run trains on: its splits' tokens and 0 / 1 labels ("train", "val" and maybe
    "test"), a record of where they came from, and the line that announces them (or None)."""

    parts: dict[str, Labelled]
    dataset: dict[str, Any]
    summary: str | None = None


Source = Callable[[Config], Messages]  # the messages a config's split (its seed, its fractions) makes


def corpus_messages(corpus: Corpus, config: Config, names: Sequence[str] = ("train", "val", "test")) -> Messages:
    """The seeded split of a data file's corpus, as `stocksent train` makes it (only `names`)."""
    parts, record = corpus.parts(config.data, tuple(names)), corpus.record
    sizes = ", ".join(f"{name} {len(labels)}" + (f" (from {record[name]['source']})" if name in corpus.fixed else "")
                      for name, (_, labels) in parts.items())
    return Messages(parts, record, f"{corpus.source}: {record['messages']} messages ({corpus.dropped} empty "
                                   f"after normalisation dropped); {sizes}")


def file_source(path: Path, started: dict[str, Any] | None = None, given: dict[str, Path] | None = None) -> Source:
    """A data file's seeded split, read as each config reads it (its columns, labels and
    preprocessing: a pretrained model's, once adopted), with the splits `given` as files of their
    own ("val", "test") taken from those; a file other than the one a resumed run `started` on
    (its source and sha256, as the checkpoint records them) is refused."""
    cache, started = CorpusCache(), started or {}

    def split(config: Config) -> Messages:
        corpus = cache.load(path, config.data, config.preprocess, given)
        now = _files(corpus.record)
        if started and set(_files(started)) != set(now):
            raise StocksentError("this run started with " + " and ".join(FLAGS[name] for name in _files(started))
                                 + "; resume it with the same files")
        for name, was in _files(started).items():
            if was.get("sha256") and was["sha256"] != now.get(name, {}).get("sha256"):
                raise StocksentError(f"{now.get(name, {}).get('source', f'the seeded {name} split')} is not the file "
                                     f"this run started on (sha256 differs); resume with {FLAGS[name]} "
                                     f"{was.get('source', 'FILE')}")
        return corpus_messages(corpus, config)
    return split


FLAGS = {"data": "--data", "val": "--val-data", "test": "--test-data"}  # where each file of a run is given


def _files(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A data record's files: the data file's, and each split's that is a file of its own."""
    return {"data": record, **{name: record[name] for name in ("val", "test") if isinstance(record.get(name), dict)}}


def memory_source(texts: list[str], codes: np.ndarray, classes: np.ndarray,
                  validation: tuple[Iterable[str], Iterable[Any]] | None) -> Source:
    """Messages in memory (`SentimentClassifier.fit`'s) as a config splits them: its
    val_fraction held out by its seed, or the validation set given; tokenised once per
    preprocessing."""
    given = None
    if validation is not None:
        val_texts = text_list(validation[0])
        given = (val_texts, known_codes(validation[1], len(val_texts), classes))
    made: dict[str, Messages] = {}  # the last split made: fit asks for the same one more than once

    def split(config: Config) -> Messages:
        key = repr((config.preprocess, config.data))
        if key not in made:
            made.clear()
            made[key] = Messages(_parts(config, texts, codes, given),
                                 {"messages": len(texts), "classes": classes.tolist()})
        return made[key]
    return split


def _parts(config: Config, texts: list[str], codes: np.ndarray,
           validation: tuple[list[str], np.ndarray] | None) -> dict[str, tuple[list, np.ndarray]]:
    tokens, codes = _usable(texts, codes, config, "the training messages")
    if validation is not None:
        parts = {"train": (tokens, codes), "val": _usable(*validation, config, "the validation set")}
    else:
        split = split_messages(tokens, config.data, test_fraction=0.0)
        parts = {name: ([tokens[i] for i in split[name]], codes[split[name]]) for name in ("train", "val")}
    if len(np.unique(parts["train"][1])) < 2:
        raise StocksentError("the messages left for training hold one label only (after holding out "
                             "validation and dropping empty texts); give more messages of each label")
    return parts


def _usable(texts: list[str], codes: np.ndarray, config: Config, what: str) -> tuple[list[list[str]], np.ndarray]:
    """Tokens and labels of the messages with any tokens left after normalisation."""
    tokens, keep = tokenize_all(texts, config.preprocess)
    if not keep:
        raise StocksentError(f"no usable messages in {what}: every text is empty after normalisation")
    return [tokens[i] for i in keep], codes[keep]


@dataclass
class Outcome:
    """A finished run: what it trained on, the network and parts it trained, and its metrics
    (validation, and test when it had a test split; {} on ranks other than 0)."""

    run: Run
    trained: Trained
    metrics: dict[str, Any]

    def predictor(self, device: str = "cpu") -> Predictor:
        """The trained network and its parts, ready to score on `device`."""
        return Predictor.build(self.trained.model, self.run.vocab, self.run.config, device, self.trained.parts)


def train_run(config: Config, source: Source, out: Path | None = None, resume: bool = False,
              untagged: Sequence[list[str]] = (), log: Log = print, bar: Callable | None = None,
              world: World = World(), on_epoch: Callable[[Progress], None] | None = None,
              pretrain_bar: Callable | None = None, untagged_from: str = "") -> Outcome:
    """Train once: pretrain first when the recipe asks or `untagged` messages (tokens) are given,
    into OUT/pretrained (reused by a rerun on the same text and settings), then the networks and
    their parts (`untagged_from` names where the untagged came from, for the log). With `out`,
    every epoch is checkpointed there, the model saved and its metrics written; `resume`
    continues the run checkpointed there (or its interrupted pretraining)."""
    if out is not None and config.run.init and Path(config.run.init).resolve() == out.resolve():
        raise StocksentError(f"--init and --out both name {out}: the model started from would be overwritten; "
                             "give another --out")
    with threads(config.run.threads):
        config = for_world(config, world, log)
        if resume and out is not None and started(out):
            config, pretrained = start_from(config)
            _check_same_source(pretrained, config, checkpoint_dataset(out))
        else:
            config, pretrained, resume = _pretrained_start(config, source, out, resume, untagged, untagged_from,
                                                           log, pretrain_bar or bar, world)
        messages = mixed_in(_read(source, config, pretrained), pretrained, config)
        run = Run.prepare(config, messages.parts, {**messages.dataset, **started_from(pretrained, config)},
                          (pretrained.vocabulary(messages.parts["train"][0], config.preprocess.min_freq),
                           pretrained.body) if pretrained else None, pretrained and pretrained.ngrams)
        if messages.summary:
            log(f"{messages.summary}; vocabulary {len(run.vocab)}; device {world.device}"
                + (", bfloat16" if bf16_used(world.device, config.run.bf16) else "")
                + (f", {world.size} processes" if world.size > 1 else ""))
        trained = train_network(run, out, resume, log, bar, world, on_epoch)
        metrics = run_metrics(run, trained) if world.main else {}
        if out is not None and world.main:
            write_json(out / METRICS, metrics)
        return Outcome(run, trained, metrics)


def _read(source: Source, config: Config, pretrained: Pretrained | None) -> Messages:
    """The run's messages; labels other than those of the classifier it starts from, named."""
    try:
        return source(config)
    except UnknownLabels as exc:
        if pretrained is None or pretrained.labels is None:
            raise
        raise StocksentError(f"{exc}: the two that {config.run.init} tells apart, and a model started from it "
                             "reads only those") from None


def mixed_in(messages: Messages, pretrained: Pretrained | None, config: Config) -> Messages:
    """With train.source_mix, the training split plus that many of the trained classifier's own
    training messages (its file, its split) per message of it, drawn by the run's seed."""
    share = config.train.source_mix
    if not share or pretrained is None or pretrained.objective != CLASSIFIER or pretrained.data is None:
        return messages
    recorded = pretrained.dataset.get("source")
    if not recorded or not Path(recorded).is_file():
        raise StocksentError(f"{config.run.init}: source_mix needs the data it was trained on "
                             f"({recorded or 'not recorded'}), which is not there")
    corpus = CorpusCache().load(Path(recorded), pretrained.data, pretrained.preprocess,
                                split_files(pretrained.dataset))
    if corpus.sha256 != pretrained.dataset.get("sha256"):
        raise StocksentError(f"{recorded} is no longer the file {config.run.init} was trained on (sha256 differs)")
    tokens, labels = corpus.parts(pretrained.data, ("train",))["train"]
    new_tokens, new_labels = messages.parts["train"]
    count = min(len(labels), round(share * len(new_labels)))
    drawn = np.sort(np.random.default_rng(config.data.seed).choice(len(labels), count, replace=False))
    train = (list(new_tokens) + [tokens[i] for i in drawn], np.concatenate([new_labels, labels[drawn]]))
    summary = messages.summary and f"{messages.summary}; {count} of {recorded}'s training messages mixed in"
    return Messages({**messages.parts, "train": train}, {**messages.dataset, "source_mix": count}, summary)


def _check_same_source(pretrained: Pretrained | None, config: Config, dataset: dict[str, Any]) -> None:
    """A resumed run starts from the classifier it started from, not one retrained since."""
    recorded = dataset.get("init", {}).get("weights_sha256")
    if pretrained is not None and recorded and recorded != pretrained.weights_sha256:
        raise StocksentError(f"{config.run.init} is not the model this run started from (its weights' sha256 "
                             "differs): it was trained again since")


def started_from(pretrained: Pretrained | None, config: Config) -> dict[str, Any]:
    """What metrics.json records of the trained classifier a run started from: its directory and
    the checksum of its weights."""
    if pretrained is None or pretrained.objective != CLASSIFIER:
        return {}
    return {"init": {"source": config.run.init, "weights_sha256": pretrained.weights_sha256}}


def _pretrained_start(config: Config, source: Source, out: Path | None, resume: bool,
                      untagged: Sequence[list[str]], untagged_from: str, log: Log, bar: Callable | None,
                      world: World) -> tuple[Config, Pretrained | None, bool]:
    """The config and pretrained layers a fresh run starts from, pretraining them first when
    asked; and whether the run itself resumes (not once it had to pretrain)."""
    if not wants_pretraining(config, bool(untagged)):
        return (*start_from(config), resume)
    if config.run.init:
        raise StocksentError("give untagged text to pretrain on (--unlabelled) or a pretrained model to start from "
                             "(--init), not both")
    tokens = list(source(config).parts["train"][0]) + list(untagged)
    settings = pretrain_settings(config)
    if out is None:  # in memory
        pretrained = pretrain_tokens(tokens, config.model, config.preprocess, settings, log=log,
                                     device=config.run.device)
        return adopt(config, pretrained), pretrained, False
    folder = out / PRETRAINED
    if world.main and not reusable(folder, tokens, config, settings):
        log(f"pretraining ({settings.objective}) on {len(tokens) - len(untagged)} training messages"
            + (f" and {len(untagged)} from {untagged_from}" if untagged else ""))
        pretrain_tokens(tokens, config.model, config.preprocess, settings, folder, resume and started(folder),
                        log=log, bar=bar, device=config.run.device)
    elif world.main:
        log(f"{folder}: pretrained before on the same text and settings; reused")
    barrier(world)  # under torchrun the other ranks wait for rank 0's, then read it
    config = config.override("run", init=str(folder))
    return (*start_from(config), False)


def train_file(config: Config, out: Path, data: str | Path | None = None, seeds: Sequence[int] = (),
               resume: bool = False, unlabelled: Sequence[str | Path] = (), named: set[str] | None = None,
               preset: str | None = None, log: Log = print, bar: Callable | None = None, world: World = World(),
               on_epoch: Callable[[Progress], None] | None = None,
               pretrain_bar: Callable | None = None, val_data: str | Path | None = None,
               test_data: str | Path | None = None) -> dict[str, Any]:
    """`stocksent train`: train on the seeded split of a data file into `out`, or once per seed
    into OUT/seed-N; returns the metrics, or the seeds' summary. `val_data` and `test_data`:
    files that are those splits as they are (the data file's messages then all train but for
    the split not given). `resume` continues what was
    interrupted, with the settings the command names (`named`, field names, or None for a whole
    config file; `preset` if it names one) checked against the checkpoint's (resumed_config).
    `unlabelled` files are pretrained on beside the training split's texts."""
    if seeds:
        return train_seeds(config, out, list(seeds), data, unlabelled, resume, named, preset, log, bar, world,
                           _seeds_files(out, seeds, resume, val_data, test_data))
    going = resume and started(out)
    if resume and not going and not (out / PRETRAINED).is_dir():
        raise nothing_to_resume(out)  # and no pretraining to continue either
    if going:
        config = resumed_config(out, config, named, preset)
    source = training_source(data, out, going, val_data, test_data)
    untagged = [] if going else _untagged(unlabelled, config)
    return train_run(config, source, out, resume, untagged, log, bar, world, on_epoch, pretrain_bar,
                     ", ".join(map(str, unlabelled))).metrics


def _seeds_files(out: Path, seeds: Sequence[int], resume: bool, val_data: str | Path | None,
                 test_data: str | Path | None) -> dict[str, Path]:
    """The split files of a run over seeds: those given, or, resumed without them, those its
    seeds recorded (so that the seeds yet to start use them too)."""
    if resume and not (val_data or test_data):
        for seed in seeds:
            folder = out / f"seed-{seed}"
            record = _metrics(folder).get("dataset") or (checkpoint_dataset(folder) if started(folder) else {})
            if record:
                return split_files(record)
    return split_files({}, val_data, test_data)


def _untagged(files: Sequence[str | Path], config: Config) -> list[list[str]]:
    return tokenize_all(read_text_files(files, config.data.text_column), config.preprocess)[0] if files else []


def train_seeds(config: Config, out: Path, seeds: list[int], data: str | Path | None = None,
                unlabelled: Sequence[str | Path] = (), resume: bool = False, named: set[str] | None = None,
                preset: str | None = None, log: Log = print, bar: Callable | None = None,
                world: World = World(), given: dict[str, Path] | None = None) -> dict[str, Any]:
    """One run per seed into OUT/seed-N on one read of the data; the test metrics' mean and
    standard deviation over the seeds are written to OUT/seeds.json and returned. Resumed, the
    seeds already finished are read back, an interrupted one continues and the others start.
    A seed that pretrains does so on its own training split, into OUT/seed-N/pretrained."""
    if len(set(seeds)) < len(seeds):
        raise StocksentError("the seeds name a seed more than once")
    source = file_source(find_data(data), given=given)  # each file read once for every seed
    runs = {}
    for seed in seeds:
        folder, asked = out / f"seed-{seed}", config.override("data", seed=seed)
        finished = _metrics(folder) if resume else {}
        if "test" in finished:
            log(f"{folder}: finished before; its metrics are read back")
            runs[seed] = finished
        elif resume and (folder / CHECKPOINT).exists():
            runs[seed] = train_file(asked, folder, data, resume=True, named=named, preset=preset, log=log, bar=bar,
                                    world=world)
        else:
            runs[seed] = train_run(asked, source, folder, False, _untagged(unlabelled, config), log, bar, world,
                                   untagged_from=", ".join(map(str, unlabelled))).metrics
    return _seed_summary(runs, out) if world.main else {}


def _seed_summary(runs: dict[int, dict[str, Any]], out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"seeds": list(runs), "runs": {str(seed): m["test"] for seed, m in runs.items()}}
    for key in ("accuracy", "f1", "roc_auc"):
        values = np.array([m["test"][key] for m in runs.values()])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                        "values": values.tolist()}
    write_json(out / SEEDS_FILE, summary)
    return summary


def _metrics(folder: Path) -> dict[str, Any]:
    path = folder / METRICS
    return read_json(path) if path.exists() else {}


def trained_before(out: Path, config: Config, data: str | Path | None = None) -> dict[str, Any] | None:
    """The metrics of the finished model in `out` when it was trained with `config`'s recipe on
    this very data file (its sha256), so that training again would only repeat it; else None."""
    try:
        saved, metrics = Config.from_dict(read_json(out / CONFIG)), read_json(out / METRICS)
        recorded = metrics["dataset"]
    except (StocksentError, KeyError, TypeError):
        return None
    if not (out / WEIGHTS).is_file() or "test" not in metrics or started(out) and _unfinished(out):
        return None
    if set(recorded) & {"val", "test"} or recorded.get("sha256") != file_sha256(find_data(data)):
        return None
    if saved.run.init and not _pretrained_on_training_split(out, recorded):
        return None  # started from another model, or pretrained on untagged text besides
    return metrics if _recipe(saved, out) == _recipe(config, out) else None


def _pretrained_on_training_split(out: Path, recorded: dict[str, Any]) -> bool:
    """Whether the layers the model in `out` started from are those it pretrained itself on its
    training split's texts alone (untagged files add messages to what it read)."""
    try:
        read = read_json(out / PRETRAINED / METRICS).get("messages")
    except StocksentError:
        return False
    return read is not None and read == recorded.get("train_size")


def _recipe(config: Config, out: Path) -> dict[str, Any]:
    """What decides a trained model: every section but the runtime's, the vocabulary's size left
    out, and the start (a run that pretrains names its own folder for it)."""
    raw = config.to_dict()
    raw["model"].pop("vocab_size")
    start = config.run.init
    return {**{name: raw[name] for name in ("model", "preprocess", "data", "train")}, "bf16": config.run.bf16,
            "init": "" if start == str(out / PRETRAINED) else start}


def _unfinished(out: Path) -> bool:
    """Whether the checkpoint in `out` stopped before its run ended (interrupted)."""
    return _metrics(out).get("epochs_run") != len(read_json(out / HISTORY))


def started(out: Path) -> bool:
    """Whether a training run has checkpointed an epoch in `out`."""
    return (out / CHECKPOINT / "state.json").exists()


def resumable(out: Path, seeds: Sequence[int] = ()) -> bool:
    """Whether --resume has something to continue in `out`: a checkpointed epoch or a
    pretraining; over seeds, always (the seeds that finished are kept)."""
    return bool(seeds) or started(out) or (out / PRETRAINED).is_dir()


def check_destination(out: Path, seeds: Sequence[int] = (), resume: bool = False, force: bool = False) -> None:
    """Refuse to train over a model already in `out` (or OUT/seed-N) unless resuming or forced."""
    for folder in [out, *(out / f"seed-{seed}" for seed in seeds)]:
        if not resume and not force and ((folder / CONFIG).exists() or (folder / CHECKPOINT).exists()):
            raise StocksentError(f"{folder} already holds a model; use --resume to continue it, --force to "
                                 "replace it, or another --out")


def resumed_config(out: Path, asked: Config, named: set[str] | None = None, preset: str | None = None) -> Config:
    """The config of the run checkpointed in `out`, with the settings the resuming command names
    (`named`, field names, or None for a whole config such as a --config file; `preset` if it
    names one) taken from `asked`. A named setting whose value is the checkpoint's is fine; one
    that differs is refused, unless it is one of RESUMABLE (train.py)."""
    saved = Config.from_dict(checkpoint_config(out))
    if preset is not None and preset != saved.preset:
        raise StocksentError(f"--preset cannot change on --resume (the checkpoint has {saved.preset!r}, "
                             f"this command {preset!r})")
    for section in SECTION_NAMES:
        changes = {}
        for field in dataclasses.fields(getattr(saved, section)):
            if field.name == "vocab_size" or (named is not None and field.name not in named):
                continue
            new = getattr(getattr(asked, section), field.name)
            check_resumable(field.name, getattr(getattr(saved, section), field.name), new)
            changes[field.name] = new
        saved = saved.override(section, **changes)
    return saved


def training_source(data: str | Path | None, out: Path, resume: bool, val_data: str | Path | None = None,
                    test_data: str | Path | None = None) -> Source:
    """The data to train on (validation and test files of their own, when given); a resumed run
    reads the files it started with, and no other."""
    if not resume:
        return file_source(find_data(data), given=split_files({}, val_data, test_data))
    started = checkpoint_dataset(out)
    return file_source(data_for_model(data, started), started, split_files(started, val_data, test_data))


def for_world(config: Config, world: World, log: Log) -> Config:
    """The config as this device and process group can run it."""
    if world.backend == "nccl" and world.size > 1 and config.train.sparse_embedding:
        log("sparse embedding gradients cannot be all-reduced by NCCL; using dense updates")
        return config.override("train", sparse_embedding=False)
    return config
