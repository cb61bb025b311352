"""The training loop: epochs over bucketed batches, validation, early stopping, checkpoints."""
from __future__ import annotations

import hashlib
import io
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from ..config import Config, TrainConfig
from ..data.batches import bucket_batches, pad_batch
from ..data.corpus import Corpus
from ..data.store import HISTORY, load_model, read_json, read_verified, save_model, tensors_of, write_bytes, write_json
from ..errors import StocksentError
from ..nets.device import autocast, bf16_used, model_device, to_device
from ..nets.distributed import World, all_sum, barrier, from_main, shard, wrap
from ..nets.lm import initialise_from
from ..nets.model import build_model, load_weights
from ..scoring.calibration import CalibrationSet
from ..scoring.metrics import binary_metrics, label_weights, sigmoid
from ..scoring.ngrams import NgramModel, check_fits, fit_ngrams, flat_ids
from ..scoring.parts import network_state, part_tensors
from ..scoring.scorer import NetworkScorer
from ..text.vocab import Vocab
from .members import LossFn, MemberThreads
from .optim import SplitOptimizer, WeightAverage, clip_gradients, learning_rate, make_optimizer, set_learning_rate

CHECKPOINT = "checkpoint"  # resume state inside the model directory
# What may change when a run (classifier or pretraining) is resumed: where and how fast it runs,
# and for how long. The network, the data and the recipe may not.
RESUMABLE = ("bf16", "device", "epochs", "patience", "stop_margin", "threads")
Log = Callable[[str], None]
Optimizer = torch.optim.Optimizer | SplitOptimizer


@dataclass
class Progress:
    """Where a run stands after its last completed epoch; saved for --resume."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0

    def epochs(self, last: int, patience: int = 0, margin: float = 0.0) -> Iterator[int]:
        """The loop every training runs (classifier and pretraining): each epoch left up to
        `last`, until `patience` epochs in a row brought no better validation loss (0: never), or
        until an epoch's validation loss lies more than `margin` (a share) above the best (0: never)."""
        while self.epoch < last and not (patience and self.bad_epochs >= patience) and not self._past(margin):
            yield self.epoch

    def _past(self, margin: float) -> bool:
        # A loss clearly above its best is overfitting under way, which more epochs at the same
        # rate have not undone in our runs; a nearly level one has been followed by a better one.
        return bool(margin and self.bad_epochs and self.history[-1]["val_loss"] > self.best_val_loss * (1 + margin))

    def record(self, row: dict[str, float], val_loss: float, seconds: float) -> None:
        """An epoch done: its row of history (epoch, the row's figures, seconds), and whether its
        validation loss is the best so far."""
        self.epoch += 1
        self.history.append({"epoch": self.epoch, **row, "seconds": round(seconds, 2)})
        if val_loss < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.bad_epochs = val_loss, self.epoch, 0
        else:
            self.bad_epochs += 1


def encode(vocab: Vocab, messages: list[list[str]]) -> list[np.ndarray]:
    return [np.asarray(vocab.encode(tokens), dtype=np.int64) for tokens in messages]


def seed_everything(seed: int, epoch: int = 0, rank: int = 0) -> np.random.Generator:
    """Seed torch for this epoch and return its batch-order generator, so that a run resumed at
    any epoch boundary draws exactly what an uninterrupted one would. The batch order is the
    same on every rank; dropout masks differ between ranks."""
    torch.manual_seed(seed * 100_003 + epoch + 7_919 * rank)
    return np.random.default_rng([seed, epoch])


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss of logits (B,), or of an ensemble's (B, K): every member against the targets;
    with `weights` (one per label, class_weights), the mean weighted by each message's label."""
    if logits.dim() == 2:
        targets = targets.unsqueeze(1).expand_as(logits)
    reduction = "mean" if weights is None else "none"
    if loss == "mse":  # the article: squared error of the sigmoid output
        losses = nn.functional.mse_loss(torch.sigmoid(logits), targets, reduction=reduction)
    else:
        losses = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction=reduction)
    if weights is None:
        return losses
    each = weights.to(logits.device)[targets.long()]
    return (losses * each).sum() / each.sum()


def class_weights(labels: np.ndarray, cfg: TrainConfig) -> torch.Tensor | None:
    """With cfg.balanced, each label's weight (label_weights), so that both labels weigh alike in
    a loss over these messages; else None (every message alike)."""
    return torch.tensor(label_weights(labels), dtype=torch.float32) if cfg.balanced else None


def trained_share(labels: np.ndarray, cfg: TrainConfig) -> float:
    """The share of positives a model's probabilities were learnt at: its training messages',
    or one half when both labels weighed alike (what the market index and adapt start from)."""
    return 0.5 if cfg.balanced else float(np.mean(labels))


def train_one_epoch(model: nn.Module, optimizer: Optimizer, encoded: list[np.ndarray],
                    labels: np.ndarray, batches: list[np.ndarray], cfg: TrainConfig,
                    pad_to: int | None = None, bar: Callable | None = None,
                    rate: Callable[[int], float] | None = None,
                    after_step: Callable[[int], None] | None = None,
                    unfrozen: int | None = None, bf16: bool = False) -> tuple[float, float]:
    """One pass over `batches`; returns mean loss and accuracy over the messages seen.
    `rate(i)` gives the learning rate of the epoch's i-th step (None: leave it as it is), and
    `after_step(i)` runs after its update; layers `unfrozen` deep or deeper do not move; `bf16`:
    the forward pass under bfloat16 autocast."""
    model.train()
    device = model_device(model)
    weights = class_weights(labels, cfg)
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    threads = MemberThreads(model, bf16) if MemberThreads.wanted(model, device) else None
    if threads is not None:
        threads.reseed()
    try:
        for step, index in enumerate(bar(batches) if bar else batches):
            if rate is not None:
                set_learning_rate(optimizer, rate(step), unfrozen)
            tokens, lengths, targets = to_device(device, *pad_batch(encoded, index, pad_to),
                                                 torch.from_numpy(labels[index]))
            optimizer.zero_grad(set_to_none=True)
            loss, logits = _forward_backward(model, threads, tokens, lengths, targets.float(),
                                             lambda z, y: compute_loss(z, y, cfg.loss, weights), bf16)
            if cfg.grad_clip:
                clip_gradients(model, cfg.grad_clip)
            optimizer.step()
            if after_step is not None:
                after_step(step)
            # Sums stay on the device: reading them back every step would stall a GPU.
            total_loss += loss * len(index)
            scored = logits if logits.dim() == 1 else logits.mean(dim=1)  # an ensemble's mean
            correct += ((scored > 0).long() == targets).sum()
    finally:
        if threads is not None:
            threads.close()
    seen = max(1, sum(len(index) for index in batches))
    return float(total_loss) / seen, int(correct) / seen


def _forward_backward(model: nn.Module, threads: MemberThreads | None, tokens: torch.Tensor, lengths: torch.Tensor,
                      targets: torch.Tensor, loss: LossFn, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's loss and its gradients: the members on their threads, or the model in one
    pass; returns the mean loss and the logits, detached."""
    if threads is not None:
        return threads.step(tokens, lengths, targets, loss)
    with autocast(model_device(model), bf16):
        logits = model(tokens, lengths).float()
    mean = loss(logits, targets)
    mean.backward()
    return mean.detach(), logits.detach()


def predict_logits(model: nn.Module, encoded: list[np.ndarray]) -> np.ndarray:
    """The network's logits for every message, in input order."""
    return NetworkScorer(model).logits(*flat_ids(encoded))


def evaluate(model: nn.Module, encoded: list[np.ndarray], labels: np.ndarray, cfg: TrainConfig,
             names: tuple[str, str], ngrams: NgramModel | None = None) -> dict[str, Any]:
    """Score every message (no batch is dropped), blending in an n-gram part when given: metrics
    plus the training loss function."""
    logits = predict_logits(model, encoded)
    if ngrams is not None:
        logits = ngrams.blend(logits, *flat_ids(encoded))
    return scored(logits, labels, cfg, names)


def scored(logits: np.ndarray, labels: np.ndarray, cfg: TrainConfig, names: tuple[str, str]) -> dict[str, Any]:
    """Metrics of these logits, plus the training loss function (balanced over these labels
    when the training's was)."""
    metrics = binary_metrics(labels, sigmoid(logits), names)
    metrics["loss"] = float(compute_loss(torch.from_numpy(logits), torch.from_numpy(labels).float(), cfg.loss,
                                         class_weights(labels, cfg)))
    return metrics


Labelled = tuple[list[list[str]], np.ndarray]  # tokenised messages and their labels (0 / 1)


@dataclass
class Run:
    """Everything one training run needs, built once from a config and tokenised messages."""

    config: Config
    vocab: Vocab
    encoded: dict[str, list[np.ndarray]]  # "train", "val" and, from a corpus, "test"
    labels: dict[str, np.ndarray]
    dataset: dict[str, Any] = field(default_factory=dict)  # source file, its sha256, message counts
    init: dict[str, torch.Tensor] | None = None  # pretrained layers the network starts from (lm.py)
    ngram_prior: NgramModel | None = None  # a trained classifier's n-gram part, which the run's corrects

    @classmethod
    def prepare(cls, config: Config, parts: dict[str, Labelled], dataset: dict[str, Any] | None = None,
                pretrained: tuple[Vocab, dict[str, torch.Tensor]] | None = None,
                ngram_prior: NgramModel | None = None) -> "Run":
        """The vocabulary is built from the "train" part alone, or is a pretrained model's, given
        with the layers to start from."""
        vocab = pretrained[0] if pretrained else Vocab.build(parts["train"][0], config.preprocess.min_freq)
        config = config.override("model", vocab_size=len(vocab))
        check_fits(config.model)
        encoded = {name: encode(vocab, tokens) for name, (tokens, _) in parts.items()}
        labels = {name: np.asarray(part_labels, dtype=np.int64) for name, (_, part_labels) in parts.items()}
        return cls(config, vocab, encoded, labels, dataset or {}, pretrained[1] if pretrained else None,
                   ngram_prior if config.train.ngram_from_source else None)

    @classmethod
    def from_corpus(cls, config: Config, corpus: Corpus,
                    pretrained: tuple[Vocab, dict[str, torch.Tensor]] | None = None) -> "Run":
        """A run on the corpus's seeded train / validation / test split."""
        return cls.prepare(config, corpus.parts(config.data), corpus.record, pretrained)

    @property
    def names(self) -> tuple[str, str]:
        return self.config.data.negative_label, self.config.data.positive_label

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(labels) for name, labels in self.labels.items()}

    @cached_property
    def train_lengths(self) -> np.ndarray:
        """Tokens per training message, which every epoch's bucketing reads."""
        return np.fromiter(map(len, self.encoded["train"]), dtype=np.int64)


@dataclass
class Trained:
    """A finished run: the network holding its best-validation weights, how it got there, the
    n-gram part fitted beside it (None when the config has none), and the validation metrics of
    the two as they score together. Ranks other than 0 get no part and no metrics."""

    model: nn.Module
    progress: Progress
    ngrams: NgramModel | None = None
    val: dict[str, Any] = field(default_factory=dict)
    calibration: CalibrationSet | None = None  # how the two score the validation split

    @property
    def parts(self) -> list[NgramModel | CalibrationSet]:
        return [part for part in (self.ngrams, self.calibration) if part is not None]


def train_network(run: Run, out: Path | None = None, resume: bool = False, log: Log = print,
                  bar: Callable | None = None, world: World = World(),
                  on_epoch: Callable[[Progress], None] | None = None) -> Trained:
    """Train, keeping the weights with the best validation loss; return the network holding them,
    its n-gram part when the config has one, and their validation metrics.
    With `out`, every epoch is checkpointed there and the best weights saved as a model
    directory; without it nothing is written. `on_epoch` sees the progress after each epoch
    (a tuner uses it to stop bad trials). `stocksent train` and `SentimentClassifier.fit` both
    train through this function.

    Under torchrun every rank runs this with the same arguments: each trains on its share of
    the batches, rank 0 validates and writes, and the others follow its early-stopping calls."""
    cfg = run.config.train
    state = _TrainingState.start(run, out, resume, world)
    if resume:
        log(f"resuming after epoch {state.progress.epoch} of {cfg.epochs}")
    best_val = None  # the best epoch's validation metrics and logits, when this run scored it (not before a resume)
    for _ in state.progress.epochs(cfg.epochs, cfg.patience, cfg.stop_margin):
        val, logits = _run_epoch(run, state, world, bar)
        log(_epoch_line(state.progress, cfg.epochs))
        if state.progress.best_epoch == state.progress.epoch:
            state.best = {name: tensor.clone() for name, tensor in cpu_state(state.scored).items()}
            best_val = val, logits
        if world.main and out is not None:
            _save_epoch(run, out, state, val)
        barrier(world)
        if on_epoch is not None:
            on_epoch(state.progress)
    model = build_model(run.config.model).to(world.device)
    best = state.best or cpu_state(state.scored)
    load_weights(model, best, "the trained network").eval()
    trained = Trained(model, state.progress)
    if world.main:
        trained = _finish(run, trained, best_val, log)
        if out is not None:
            save_model(out, run.config, run.vocab, {**best, **part_tensors(trained.parts)}, {"val": trained.val})
    barrier(world)
    return trained


def _finish(run: Run, trained: Trained, best_val: tuple[dict[str, Any], np.ndarray] | None, log: Log) -> Trained:
    """The network's parts, fitted now that it is trained: the n-gram part (when the config has
    one) on the training split, then the calibration set, the validation split as the two score
    it; and their validation metrics (`best_val`: the network's own and its logits, when its epoch
    scored them: the same weights, so the validation split is not scored again)."""
    if best_val is None:
        logits = predict_logits(trained.model, run.encoded["val"])
        best_val = scored(logits, run.labels["val"], run.config.train, run.names), logits
    val, logits = best_val
    if run.config.model.ngrams:
        started = time.perf_counter()
        trained.ngrams = fit_ngrams(run.encoded["train"], run.labels["train"], run.config.model, run.config.train,
                                    run.ngram_prior)
        logits = trained.ngrams.blend(logits, *flat_ids(run.encoded["val"]))
        alone, val = val, scored(logits, run.labels["val"], run.config.train, run.names)
        what = "n-gram part (the source's, corrected)" if run.ngram_prior else "n-gram part"
        log(f"{what}: {len(trained.ngrams.keys)} 1-{trained.ngrams.longest} grams in "
            f"{time.perf_counter() - started:.0f} s; val accuracy {alone['accuracy']:.4f} alone, "
            f"{val['accuracy']:.4f} with it")
    trained.val = val
    if len(np.unique(run.labels["val"])) == 2:  # a validation split of one label calibrates nothing
        trained.calibration = CalibrationSet(sigmoid(logits), run.labels["val"], trained_share(run.labels["train"],
                                                                                              run.config.train))
    return trained


@dataclass
class _TrainingState:
    """The model being trained, its optimizer, the weight average if any, and the progress."""

    model: nn.Module  # a SentimentLSTM or SentimentEnsemble
    trainer: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: Optimizer
    average: WeightAverage | None
    progress: Progress
    best: dict[str, torch.Tensor] | None = None  # the best epoch's weights, on the CPU

    @classmethod
    def start(cls, run: Run, out: Path | None, resume: bool, world: World) -> "_TrainingState":
        cfg = run.config.train
        torch.manual_seed(run.config.data.seed)  # initial weights, the same on every rank
        model = build_model(run.config.model)
        if run.init is not None:
            initialise_from(model, run.init, run.config.run.init or "the pretrained model")
        model = model.to(world.device)
        optimizer = make_optimizer(model, cfg)
        average = WeightAverage(model, build_model(run.config.model).to(world.device), cfg.average_decay) \
            if cfg.average_decay else None
        if resume and out is None:
            raise StocksentError("resuming needs the model directory the run was saved in")
        progress = load_checkpoint(out, model, optimizer, average) if resume else Progress()
        best = network_state(load_model(out)[2]) if resume and progress.best_epoch else None
        return cls(model, wrap(model, world), optimizer, average, progress, best)

    @property
    def scored(self) -> nn.Module:
        """What validation scores and the model directory keeps."""
        return self.average.model if self.average else self.model


def _run_epoch(run: Run, state: _TrainingState, world: World,
               bar: Callable | None) -> tuple[dict[str, Any], np.ndarray | None]:
    """Train one epoch on this rank's share of the batches, validate, record it; return the
    validation metrics and (on rank 0) logits."""
    cfg, progress, average = run.config.train, state.progress, state.average
    started = time.perf_counter()
    rng = seed_everything(run.config.data.seed, progress.epoch, world.rank)
    batches = shard(bucket_batches(run.train_lengths, cfg.batch_size, rng), world)
    done, total = progress.epoch * len(batches), cfg.epochs * len(batches)
    loss, acc = train_one_epoch(state.trainer, state.optimizer, run.encoded["train"],
                                run.labels["train"], batches, cfg, bar=bar,
                                rate=lambda step: learning_rate(cfg, done + step, total),
                                after_step=average and (lambda step: average.update(done + step)),
                                unfrozen=progress.epoch + 1 if cfg.unfreeze else None,
                                bf16=bf16_used(world.device, run.config.run.bf16))
    seen = sum(map(len, batches))
    loss_sum, correct, seen = all_sum([loss * seen, acc * seen, seen], world)
    val, logits = _validate(run, state.scored, world)
    seen = max(seen, 1)  # a split smaller than one batch per rank trains on nothing this epoch
    progress.record({"loss": loss_sum / seen, "train_accuracy": correct / seen, "val_loss": val["loss"],
                     "val_accuracy": val["accuracy"]}, val["loss"], time.perf_counter() - started)
    return val, logits


def _validate(run: Run, model: nn.Module, world: World) -> tuple[dict[str, Any], np.ndarray | None]:
    """Rank 0 scores the validation split; every rank gets its loss and accuracy, rank 0 the logits."""
    logits = predict_logits(model, run.encoded["val"]) if world.main else None
    val = scored(logits, run.labels["val"], run.config.train, run.names) if logits is not None else {}
    loss, accuracy = from_main([val.get("loss", 0.0), val.get("accuracy", 0.0)], world)
    return {**val, "loss": loss, "accuracy": accuracy}, logits


def _save_epoch(run: Run, out: Path, state: _TrainingState, val: dict[str, Any]) -> None:
    if state.progress.best_epoch == state.progress.epoch:
        save_model(out, run.config, run.vocab, state.best, {"val": val})
    write_json(out / HISTORY, state.progress.history)
    save_checkpoint(out, run.config.to_dict(), run.dataset, state.model, state.optimizer, state.progress,
                    state.average)


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _epoch_line(progress: Progress, epochs: int) -> str:
    row = progress.history[-1]
    mark = " *" if progress.best_epoch == progress.epoch else ""
    return (f"epoch {row['epoch']:>3}/{epochs}  loss {row['loss']:.4f}  "
            f"train_acc {row['train_accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_acc {row['val_accuracy']:.4f}{mark}")


def save_checkpoint(out: Path, config: dict[str, Any], dataset: dict[str, Any], model: nn.Module,
                    optimizer: Optimizer, progress: Progress, average: WeightAverage | None = None) -> None:
    """Last-epoch weights, optimizer state and weight average, in files named by epoch;
    state.json is replaced last and names them with their checksums, and only then are the
    previous epoch's files removed. A crash at any point leaves a state.json whose files exist."""
    folder = out / CHECKPOINT
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    files = {"weights": save_safetensors(cpu_state(model)), "optimizer": buffer.getvalue()}
    if average is not None:
        files["average"] = save_safetensors(cpu_state(average.model))
    names = {part: _checkpoint_file(part, progress.epoch) for part in files}
    for part, data in files.items():
        write_bytes(folder / names[part], data)
    write_json(folder / "state.json", {
        "progress": progress.__dict__, "config": config, "dataset": dataset, "files": names,
        "sha256": {part: hashlib.sha256(data).hexdigest() for part, data in files.items()},
    })
    for stale in folder.iterdir():
        if stale.name not in (*names.values(), "state.json") and not stale.name.startswith("."):
            stale.unlink(missing_ok=True)


def _checkpoint_part(path: Path, expected_sha: str | None) -> bytes:
    return read_verified(path, expected_sha, f"checkpoint incomplete: {path} is missing",
                         f"checkpoint corrupted: {path} does not match state.json")


def _checkpoint_file(part: str, epoch: int) -> str:
    return f"{part}-{epoch}.{'pt' if part == 'optimizer' else 'safetensors'}"


def load_checkpoint(out: Path, model: nn.Module, optimizer: Optimizer,
                    average: WeightAverage | None = None) -> Progress:
    state = _read_state(out)
    part = lambda name: _checkpoint_part(out / CHECKPOINT / state["files"].get(name, "?"),  # noqa: E731
                                         state["sha256"].get(name))
    where = str(out / CHECKPOINT)
    load_weights(model, tensors_of(part("weights"), where), where)
    if average is not None:
        load_weights(average.model, tensors_of(part("average"), where), where)
    # weights_only: the optimizer file holds tensors and numbers, never code to run.
    try:
        optimizer.load_state_dict(torch.load(io.BytesIO(part("optimizer")), weights_only=True))
    except pickle.UnpicklingError:
        raise StocksentError(f"{out / CHECKPOINT}: the optimizer state holds more than tensors and "
                             "numbers; refusing to load it") from None
    return Progress(**state["progress"])


def check_resumable(name: str, old: Any, new: Any, allowed: tuple[str, ...] = RESUMABLE) -> None:
    """Refuse a setting that differs from the checkpoint's, unless it is one of `allowed` (those
    of RESUMABLE the run has)."""
    if old != new and name not in allowed:
        raise StocksentError(f"{name} cannot change on --resume (the checkpoint has {old!r}, this command "
                             f"{new!r}); only {', '.join(allowed)} may")


def checkpoint_config(out: Path) -> dict[str, Any]:
    return _read_state(out)["config"]


def checkpoint_dataset(out: Path) -> dict[str, str]:
    """The data file an interrupted run was reading ({} when not recorded)."""
    return _read_state(out).get("dataset", {})


def nothing_to_resume(out: Path) -> StocksentError:
    return StocksentError(f"nothing to resume in {out} (no {CHECKPOINT}/state.json)")


def _read_state(out: Path) -> dict[str, Any]:
    path = out / CHECKPOINT / "state.json"
    if not path.exists():
        raise nothing_to_resume(out)
    state = read_json(path)
    if not isinstance(state, dict) or not {"config", "progress", "files", "sha256"} <= set(state):
        raise StocksentError(f"{path} is not a stocksent training checkpoint")
    return state


class TensorBoardLog:
    """Each epoch's losses, accuracies and time as TensorBoard scalars (`train --tensorboard DIR`)."""

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise StocksentError("--tensorboard needs the tensorboard package: "
                                 "pip install 'stocksent[tensorboard]'") from None
        self.writer = SummaryWriter(str(folder))

    def __call__(self, progress: Progress) -> None:
        row = progress.history[-1]
        for key in ("loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"):
            self.writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def progress_bar(desc: str) -> Callable | None:
    """A tqdm bar over batches on a terminal; None (plain epoch lines only) in a pipe or log."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return lambda items: tqdm(items, desc=desc, leave=False, unit="batch", file=sys.stderr)


def run_metrics(run: Run, trained: Trained) -> dict[str, Any]:
    """What metrics.json records of a run: its data, epochs, time, the precision its training
    steps computed in, and the scores of its validation split and, when it has one, its test split."""
    progress = trained.progress
    return {
        "dataset": {**run.dataset, **{f"{name}_size": size for name, size in run.sizes.items()}},
        "best_epoch": progress.best_epoch,
        "epochs_run": progress.epoch,
        "train_seconds": round(sum(row["seconds"] for row in progress.history), 1),
        "precision": "bfloat16" if bf16_used(model_device(trained.model), run.config.run.bf16) else "float32",
        "val": trained.val,
        **({"test": evaluate(trained.model, run.encoded["test"], run.labels["test"], run.config.train,
                             run.names, trained.ngrams)} if "test" in run.encoded else {}),
    }
