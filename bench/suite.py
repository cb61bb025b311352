"""The benchmark suite: training and inference speed and memory of the default model, one table.

    python bench/suite.py [--data PATH] [--padded-messages N] [--stream N] [--threads N] [--json FILE]
                          [--device auto|cpu|cuda] [--bf16 | --no-bf16] [--no-memory]

Sections, all on the bundled StockTwits data and the default preset, in one run:
  train    one epoch over the whole training split in length-bucketed batches, and the same model
           fed the article's way (every message padded to 244) over --padded-messages messages
           (0: all); the ratio of their messages per second
  to 0.717 train from scratch, scoring the test split every 50 batches (scoring time excluded),
           until test accuracy reaches the article's final 0.717
  infer    raw text in, probabilities out (normalisation included): batch throughput over the
           test split's messages five times over (median of three passes), and single-message
           latency, with PyTorch and with onnxruntime
  memory   peak resident memory of `stocksent train` (2 epochs) and of `stocksent predict`
           streaming files of the test split's size, --stream / 10 and --stream messages, each in
           a fresh process; predict's should not grow with the file; and the largest file again
           with --workers set to the number of CPUs (its rate only: each worker has its own memory)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from padding import ARTICLE_WIDTH, time_epoch
from rss import run_measured
from stocksent.classifier import SentimentClassifier
from stocksent.config import preset
from stocksent.data.batches import bucket_batches, ordered_batches
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.data.store import save_model
from stocksent.errors import StocksentError
from stocksent.nets.device import DEVICES, bf16_used, resolve_device
from stocksent.nets.model import build_model
from stocksent.scoring.export import export_onnx
from stocksent.training.optim import make_optimizer
from stocksent.training.train import Run, evaluate, seed_everything, train_one_epoch

TARGET = 0.717  # the article's test accuracy
CHECK_EVERY = 50  # batches between test-split checks in the time-to-target run


def machine(device: torch.device) -> str:
    cpu = (next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor())
           if Path("/proc/cpuinfo").exists() else platform.processor())
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu}, {os.cpu_count()} CPUs{gpu}, {platform.system()} {platform.machine()}, Python "
            f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads")


def bench_training(run: Run, padded_messages: int, device: torch.device) -> dict:
    encoded, labels = run.encoded["train"], run.labels["train"]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64)
    size = run.config.train.batch_size
    bucketed = time_epoch(run, encoded, labels, bucket_batches(lengths, size, np.random.default_rng(0)), None, device)
    n = padded_messages or len(encoded)
    padded = time_epoch(run, encoded[:n], labels[:n], ordered_batches(n, size), ARTICLE_WIDTH, device)
    padded["epoch_seconds_estimated"] = len(encoded) / padded["messages_per_s"]
    return {"messages": len(encoded), "padded_messages": n, "bucketed": bucketed, "padded": padded,
            "ratio": bucketed["messages_per_s"] / padded["messages_per_s"]}


def bench_time_to_target(run: Run, device: torch.device) -> tuple[dict, torch.nn.Module]:
    cfg = run.config.train
    torch.manual_seed(run.config.data.seed)
    model = build_model(run.config.model).to(device)
    optimizer = make_optimizer(model, cfg)
    lengths = np.fromiter(map(len, run.encoded["train"]), dtype=np.int64)
    started, training, steps, accuracy = time.perf_counter(), 0.0, 0, 0.0
    for epoch in range(cfg.epochs):
        batches = bucket_batches(lengths, cfg.batch_size, seed_everything(run.config.data.seed, epoch))
        for first in range(0, len(batches), CHECK_EVERY):
            tick = time.perf_counter()
            train_one_epoch(model, optimizer, run.encoded["train"], run.labels["train"],
                            batches[first:first + CHECK_EVERY], cfg, bf16=run.config.run.bf16)
            training += time.perf_counter() - tick
            steps += len(batches[first:first + CHECK_EVERY])
            accuracy = evaluate(model, run.encoded["test"], run.labels["test"], cfg, run.names)["accuracy"]
            if accuracy >= TARGET:
                return {"train_seconds": training, "wall_seconds": time.perf_counter() - started,
                        "steps": steps, "epochs": steps / len(batches), "test_accuracy": accuracy}, model
    return {"train_seconds": training, "reached": False, "test_accuracy": accuracy}, model


def bench_inference(clf: SentimentClassifier, texts: list[str], repeats: int = 3) -> dict:
    """Batch throughput as the median of `repeats` timed passes (this machine wanders by 20-30%
    from one pass to the next), then single-message latency."""
    clf.predict_proba(texts[:1000])  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        clf.predict_proba(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    latencies = []
    for text in texts[:2000]:
        tick = time.perf_counter()
        clf.predict_proba(text)
        latencies.append(time.perf_counter() - tick)
    ms = np.asarray(latencies) * 1000
    return {"messages": len(texts), "messages_per_s": float(np.median(rates)), "passes_messages_per_s": rates,
            "single_p50_ms": float(np.percentile(ms, 50)), "single_p99_ms": float(np.percentile(ms, 99))}


def write_jsonl(path: Path, texts: list[str], n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"message": texts[i % len(texts)]}) + "\n")
    return path


def bench_memory(data: Path, model_dir: Path, texts: list[str], stream: int, tmp: Path,
                 train_flags: list[str]) -> dict:
    threads = ["--threads", str(torch.get_num_threads())]
    train = run_measured(["train", "--data", str(data), "--epochs", "2", "--out", str(tmp / "train"),
                          "--force", *train_flags, *threads])
    result = {"train_2_epochs": train}
    for n in sorted({len(texts), stream // 10, stream}):
        path = write_jsonl(tmp / f"messages_{n}.jsonl", texts, n)
        r = run_measured(["predict", str(model_dir), "--input", str(path), "--format", "jsonl"])
        result[f"predict_{n}"] = {**r, "messages": n, "messages_per_s": n / r["seconds"]}
        if n == stream:  # the same file again, on a process of one thread per core
            workers = os.cpu_count() or 1
            r = run_measured(["predict", str(model_dir), "--input", str(path), "--format", "jsonl",
                              "--workers", str(workers)])
            result["workers"] = {"seconds": r["seconds"], "workers": workers, "messages": n,
                                 "messages_per_s": n / r["seconds"]}
        path.unlink()
    return result


def _passes(inference: dict) -> str:
    rates = inference["passes_messages_per_s"]
    return f"{inference['messages']:,} messages, median of {len(rates)} ({min(rates):,.0f}-{max(rates):,.0f})"


def print_table(r: dict) -> None:
    t, target, inf, onnx, mem = r["train"], r["to_target"], r["inference"], r["inference_onnx"], r.get("memory", {})
    rows = [
        ("training epoch, bucketed (default)", f"{t['bucketed']['seconds']:.1f} s",
         f"{t['bucketed']['messages_per_s']:,.0f} msg/s", f"{t['messages']:,} messages"),
        ("training, padded to 244 (article)", f"{t['padded']['epoch_seconds_estimated']:.1f} s/epoch",
         f"{t['padded']['messages_per_s']:,.0f} msg/s", f"timed on {t['padded_messages']:,} messages"),
        ("speed-up of bucketing", f"{t['ratio']:.1f}x", "", "messages/s ratio, same model"),
        (f"time to test accuracy {TARGET}", f"{target['train_seconds']:.1f} s",
         f"{target.get('wall_seconds', 0):.1f} s wall", f"acc {target['test_accuracy']:.4f} after "
         f"{target.get('steps', '-')} steps"),
        ("batch inference, text in (torch)", "", f"{inf['messages_per_s']:,.0f} msg/s", _passes(inf)),
        ("batch inference, text in (onnx)", "", f"{onnx['messages_per_s']:,.0f} msg/s", _passes(onnx)),
        ("single message latency (torch)", f"p50 {inf['single_p50_ms']:.2f} ms",
         f"p99 {inf['single_p99_ms']:.2f} ms", ""),
        ("single message latency (onnx)", f"p50 {onnx['single_p50_ms']:.2f} ms",
         f"p99 {onnx['single_p99_ms']:.2f} ms", ""),
    ]
    if mem:
        rows.append(("peak RSS, train (2 epochs)", f"{mem['train_2_epochs']['peak_rss_mb']:.0f} MB", "",
                     "stocksent train"))
    for key, m in mem.items():
        if key.startswith("predict_"):
            rows.append((f"peak RSS, predict {m['messages']:,} msgs", f"{m['peak_rss_mb']:.0f} MB",
                         f"{m['messages_per_s']:,.0f} msg/s", "stocksent predict --input FILE"))
    if "workers" in mem:
        m = mem["workers"]
        rows.append((f"predict --workers {m['workers']}, {m['messages']:,} msgs", "",
                     f"{m['messages_per_s']:,.0f} msg/s",
                     "stocksent predict --input FILE, a process of one thread per core"))
    print(f"machine: {r['machine']}\ndate: {r['date']}; device {r['device']}{', bf16 autocast' if r['bf16'] else ''}")
    print(f"{'measure':<38}{'value':>18}{'rate':>18}  note")
    for name, value, rate, note in rows:
        print(f"{name:<38}{value:>18}{rate:>18}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--padded-messages", type=int, default=10_000,
                        help="messages to time the padded-to-244 feeding on (0: the whole split)")
    parser.add_argument("--stream", type=int, default=1_000_000, help="messages in the large predict file")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--data", metavar="PATH", help="data file (default: found as stocksent finds it)")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where training and torch inference run (auto: a CUDA GPU when present)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                        help="train with bfloat16 autocast where the device has it (default: the preset's, on)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory section (its train and predict processes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    # As `stocksent train`: bfloat16 only where the device has it; the table says which it used.
    config = preset("default")
    bf16 = bf16_used(device, config.run.bf16 if args.bf16 is None else args.bf16)
    config = config.override("run", bf16=bf16)
    corpus = load_corpus(find_data(args.data), config.data, config.preprocess)
    run = Run.from_corpus(config, corpus)
    result = {"machine": machine(device), "device": str(device), "bf16": bf16,
              "date": datetime.date.today().isoformat(), "preset": "default", "data": str(corpus.source)}
    result["train"] = bench_training(run, args.padded_messages, device)
    result["to_target"], model = bench_time_to_target(run, device)
    test_texts = [corpus.texts[i] for i in corpus.split(config.data)["test"]]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        save_model(model_dir, run.config, run.vocab, {k: v.cpu() for k, v in model.state_dict().items()}, {})
        result["inference"] = bench_inference(SentimentClassifier.load(model_dir, device.type), test_texts * 5)
        export_onnx(model_dir)
        result["inference_onnx"] = bench_inference(SentimentClassifier.load(model_dir, backend="onnx"), test_texts * 5)
        if not args.no_memory:
            flags = ["--device", device.type, "--bf16" if bf16 else "--no-bf16"]
            result["memory"] = bench_memory(corpus.source, model_dir, test_texts, args.stream, Path(tmp), flags)
    print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    try:
        main()
    except StocksentError as exc:
        raise SystemExit(f"suite: {exc}") from None
