"""The `stocksent` command line: a thin wrapper that fills configs and calls the library."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .classifier import SentimentClassifier
from .config import (
    PRESETS,
    Config,
    DataConfig,
    ModelConfig,
    PreprocessConfig,
    PretrainConfig,
    RunConfig,
    TrainConfig,
    preset,
)
from .data.corpus import CorpusCache, load_corpus
from .data.dataset import DATA_URL, ensure_data, fetch, file_sha256, find_data, read_texts
from .data.table import input_files
from .errors import StocksentError, check_range
from .evaluation.experiment import adapt_to, calibrate, evaluate_split
from .nets.device import DEVICES, threads
from .nets.distributed import join, leave
from .scoring.export import export_onnx
from .scoring.index import FREQS, Columns, check_level, estimator_for, file_calibration, index_files
from .scoring.quantify import METHODS, default_method
from .scoring.scorer import BACKENDS
from .scoring.stream import MAX_BATCH, MAX_WORKERS, explained, scored_chunks
from .training.adapt import check_settings
from .training.runs import check_destination, resumable, train_file, trained_before
from .training.train import TensorBoardLog, progress_bar
from .training.tune import TuneConfig

EXAMPLES = {
    "fetch": "example: stocksent data fetch\n"
             "         stocksent data fetch --from ~/Downloads/StockTwits_SPY_Sentiment_2017.gz\n"
             "         stocksent data fetch --if-missing --url https://example.org/StockTwits_SPY_Sentiment_2017.gz",
    "train": "example: stocksent train --preset default --out models/default\n"
             "         stocksent train --unlabelled ../shared/data/unlabelled/stocktwits_gme_2021.csv "
             "--out models/adapted\n"
             "         stocksent train --preset finetune --init models/default --data mine.csv "
             "--val-data mine-val.csv --test-data mine-test.csv --out models/mine",
    "pretrain": "example: stocksent pretrain --text ../shared/data/unlabelled/stocktwits_gme_2021.csv --out models/lm"
                " && stocksent train --init models/lm",
    "adapt": "example: stocksent adapt models/default --text ../shared/data/ood/stocktwits_trending_2020.csv "
             "--out models/trending\n"
             "         stocksent evaluate models/trending --data ../shared/data/ood/stocktwits_trending_2020.csv "
             "--split all",
    "evaluate": "example: stocksent evaluate models/default --json\n"
                "         stocksent evaluate models/default --data ../shared/data/ood/stocktwits_trending_2020.csv "
                "--split all",
    "tune": "example: stocksent tune --trials 30 --timeout 3600 --out runs/tune && "
            "stocksent train --config runs/tune/best_config.json",
    "report": "example: stocksent report models/default models/default-grouped --out reports/default",
    "predict": 'example: stocksent predict models/default "$SPY buy the dip" "puts printing 🐻" --format jsonl '
               "--explain\n         stocksent predict models/default --input messages.parquet --output scored.csv\n"
               "         stocksent predict models/default --input 'archive/*.parquet' --output scored/ --dask local:2",
    "export": "example: stocksent export models/default --onnx",
    "index": "example: stocksent index models/default --input ../shared/data/stream/stocktwits_stream_2018_2022.csv.gz "
             "--ticker-column ticker --freq month --out index.csv --plot index.png\n"
             "         stocksent index models/default --input archive/ --ticker-column ticker --out index.csv "
             "--dask tcp://scheduler:8786",
    "calibrate": "example: stocksent calibrate models/default",
    "baseline": "example: stocksent baseline --group-duplicates --json",
    "serve": "example: stocksent serve models/default --port 8000 --workers 2\n"
             "         curl -s localhost:8000/v1/predict -d '{\"texts\": [\"$SPY to the moon\"]}'",
}

# The config sections train's flags set, by their name in a config.
SECTIONS = {"model": ModelConfig, "preprocess": PreprocessConfig, "data": DataConfig, "train": TrainConfig,
            "run": RunConfig}
# The config fields each command has flags for, by section, with the title of their group in --help:
# None takes every field that has a flag (config.setting), a tuple only the fields it names.
SETTINGS: dict[str, list[tuple[str, type, tuple[str, ...] | None]]] = {
    "train": [(f"{name} settings", section, None) for name, section in SECTIONS.items()],
    "pretrain": [("network shape (default: the preset's)", ModelConfig, ("embedding_dim", "lstm_sizes")),
                 ("pretraining settings", PretrainConfig, None),
                 ("run settings", RunConfig, ("threads", "device"))],
    "tune": [("search settings", TuneConfig, None), ("run settings", RunConfig, ("threads", "device"))],
}
_TYPES = {"int": int, "float": float, "str": str, "list[int]": int}


def flag(item: dataclasses.Field) -> str | None:
    """A config field's flag: the one its metadata names, else `--` and its name with dashes; None
    for a field the command line does not set."""
    named = item.metadata.get("flag", "")
    return None if named is None else named or "--" + item.name.replace("_", "-")


def _settings(command: str) -> Iterable[tuple[str, type, list[dataclasses.Field]]]:
    for title, section, names in SETTINGS[command]:
        yield title, section, [item for item in dataclasses.fields(section)
                               if flag(item) and (names is None or item.name in names)]


def _add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of `command`'s config fields, each with its field's help; not given, they are None
    (the preset's value)."""
    for title, _, items in _settings(command):
        group = parser.add_argument_group(title)
        for item in items:
            kind, text = str(item.type), item.metadata["help"]
            if kind == "bool":
                action = argparse.BooleanOptionalAction if item.metadata.get("negatable", True) else "store_true"
                group.add_argument(flag(item), dest=item.name, action=action, default=None, help=text)
            else:
                group.add_argument(flag(item), dest=item.name, type=_TYPES[kind],
                                   nargs="+" if kind == "list[int]" else None, default=None, help=text)


def _given(args: argparse.Namespace, command: str, section: type) -> dict[str, Any]:
    """The values of `section`'s fields that `command`'s flags gave."""
    return {item.name: getattr(args, item.name) for _, kind, items in _settings(command) if kind is section
            for item in items if getattr(args, item.name) is not None}


DATA_HELP = "data file: CSV, CSV.gz, JSONL or Parquet"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "texts", None) is not None and not any(word.startswith("-") for word in extra):
        args.texts += extra  # predict's messages may also come after its options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.handler(args) or 0
    except StocksentError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("stocksent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]  # CUDA names the size here
        return _fail(f"out of memory ({first}); try smaller sizes or batches")
    except OSError as exc:  # a path the user named that cannot be read or written: one line, no traceback
        return _fail(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc.strerror or exc))


def _fail(message: str) -> int:
    print(f"stocksent: error: {message}", file=sys.stderr)
    return 1


def _out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError is CUDA's; torch's CPU allocator raises a RuntimeError that says so.
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stocksent", description="Bullish or bearish? LSTM sentiment for trader messages.",
        epilog="example: stocksent train && stocksent predict models/default \"$SPY to the moon\"")
    parser.add_argument("--version", action="version", version=f"stocksent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data(commands)
    _add_train(commands)
    _add_pretrain(commands)
    _add_adapt(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_index(commands)
    _add_calibrate(commands)
    _add_export(commands)
    _add_serve(commands)
    _add_baseline(commands)
    _add_report(commands)
    _add_tune(commands)
    return parser


def _subparser(commands, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=help, epilog=example,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_data(commands) -> None:
    data = _subparser(commands, "data", "get the StockTwits data set", EXAMPLES["fetch"])
    sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch_cmd = _subparser(sub, "fetch", "download the data set into the user cache (sha256 checked)",
                           EXAMPLES["fetch"])
    fetch_cmd.add_argument("--from", dest="source", metavar="PATH", help="copy this local file instead")
    fetch_cmd.add_argument("--url", default=DATA_URL, help="download from this address instead (default: the "
                           "article's repository); the sha256 is checked either way")
    fetch_cmd.add_argument("--if-missing", action="store_true",
                           help="do nothing when a data file is already found (see: stocksent data where)")
    fetch_cmd.set_defaults(handler=cmd_fetch)
    where = _subparser(sub, "where", "print which data file commands will use", "example: stocksent data where")
    where.add_argument("--data", metavar="PATH", help=DATA_HELP)
    where.set_defaults(handler=cmd_where)


def _add_train(commands) -> None:
    train = _subparser(commands, "train", "train a model, then report its test metrics", EXAMPLES["train"])
    train.add_argument("--preset", choices=list(PRESETS),
                       help="default (the default): the best fast recipe; tutorial: the article's recipe; "
                            "finetune: for a trained classifier (--init) on a market's own tags")
    train.add_argument("--config", metavar="FILE", help="a config.json to start from instead of a preset")
    train.add_argument("--data", metavar="PATH", help=DATA_HELP)
    train.add_argument("--val-data", metavar="FILE", help="a file of validation messages, used as it is instead "
                       "of a share of --data (the same columns and labels)")
    train.add_argument("--test-data", metavar="FILE", help="a file of test messages, used as it is instead of a "
                       "share of --data (the same columns and labels)")
    train.add_argument("--out", metavar="DIR", help="model directory (default: models/PRESET)")
    train.add_argument("--seeds", type=int, nargs="+", metavar="N",
                       help="train once per seed into OUT/seed-N and report the mean and standard "
                       "deviation of the test metrics (written to OUT/seeds.json)")
    train.add_argument("--unlabelled", nargs="+", metavar="FILE",
                       help="first pretrain the layers as a language model on the training split's texts and "
                            "these files' (CSV, JSONL, Parquet or text, one message a line; no labels read), "
                            "kept in OUT/pretrained and reused by a rerun, then train from them")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    train.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    train.add_argument("--reuse", action="store_true", help="when --out already holds a model trained with this "
                       "recipe on this data file, report it instead of training again; else train over it "
                       "(make run)")
    train.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    train.add_argument("--tensorboard", metavar="DIR", help="also log each epoch for TensorBoard into "
                       "DIR/<name of --out> (needs: pip install 'stocksent[tensorboard]')")
    _add_settings(train, "train")
    train.set_defaults(handler=cmd_train)


def _add_pretrain(commands) -> None:
    pt = _subparser(commands, "pretrain", "train the embedding and LSTM layers as a next-word language model on "
                    "messages without tags, for train --init", EXAMPLES["pretrain"])
    pt.add_argument("--text", nargs="+", required=True, metavar="FILE",
                    help="CSV, JSONL or Parquet files (their --text-column) or plain text, one message a line")
    pt.add_argument("--text-column", default="message", help="text column of the files (default: message)")
    pt.add_argument("--out", required=True, metavar="DIR", help="where the pretrained model goes")
    pt.add_argument("--preset", choices=list(PRESETS), default="default",
                    help="whose network shape and preprocessing to pretrain (default: default)")
    pt.add_argument("--resume", action="store_true", help="continue an interrupted pretraining in --out")
    pt.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    pt.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    _add_settings(pt, "pretrain")
    pt.set_defaults(handler=cmd_pretrain)


def _add_adapt(commands) -> None:
    ad = _subparser(commands, "adapt", "adapt a trained model to a new market's messages, no tags needed: its "
                    "n-gram part learns from the model's surest guesses for them, and how bullish the market is "
                    "on each ticker shifts that ticker's messages. Refused, nothing saved, where the "
                    "market's messages read unlike the model's (give --calibrate) or the result scores worse",
                    EXAMPLES["adapt"])
    ad.add_argument("model_dir", metavar="MODEL_DIR", help="a model trained with its n-gram part (the default)")
    ad.add_argument("--text", nargs="+", required=True, metavar="FILE",
                    help="the market's messages: CSV, JSONL or Parquet files (their --text-column) or plain "
                         "text, one message a line; any tags in them are not read")
    ad.add_argument("--text-column", default="message", help="text column of the files (default: message)")
    ad.add_argument("--out", required=True, metavar="DIR", help="where the adapted model goes (MODEL_DIR is kept)")
    ad.add_argument("--data", metavar="PATH", help="the tagged file the model was trained on (default: the one "
                                                   "it records, found as for training)")
    ad.add_argument("--threshold", type=float, default=0.9,
                    help="keep the guesses with p >= this or <= 1 - this (default 0.9)")
    ad.add_argument("--rounds", type=int, default=5, help="at most this many rounds of guessing and refitting "
                                                          "the n-gram part (default 5; they stop once the sure "
                                                          "guesses stop growing; 0: leave it as it is)")
    ad.add_argument("--no-priors", dest="priors", action="store_false",
                    help="do not shift each ticker's messages by how bullish the market is on it")
    ad.add_argument("--calibrate", metavar="FILE", help="tagged messages of this market (text and label columns "
                                                         "as for training): the estimates read them, and the "
                                                         "adapted model must score no worse on them")
    ad.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    ad.add_argument("--json", action="store_true", help="print the adapted model's metrics as JSON")
    ad.set_defaults(handler=cmd_adapt)


def _add_evaluate(commands) -> None:
    ev = _subparser(commands, "evaluate", "score a saved model on its test (or validation) split",
                    EXAMPLES["evaluate"])
    ev.add_argument("model_dir", metavar="MODEL_DIR")
    ev.add_argument("--data", metavar="PATH", help="data file (default: found as for training)")
    ev.add_argument("--split", choices=["test", "val", "all"], default="test",
                    help="test or val: that split of the training file (or of --data, split the same way); "
                         "all: every message of --data, e.g. another market's")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_device(ev)
    ev.set_defaults(handler=cmd_evaluate)


def _add_predict(commands) -> None:
    pr = _subparser(commands, "predict", "label messages given as arguments, a file, or stdin",
                    EXAMPLES["predict"])
    pr.add_argument("model_dir", metavar="MODEL_DIR")
    pr.add_argument("texts", nargs="*", metavar="TEXT", help="messages to score")
    pr.add_argument("--input", metavar="FILES", help="a CSV, JSONL or Parquet file, a directory of them or a "
                    "glob pattern (or - for one message per line of stdin)")
    pr.add_argument("--text-column", default="message", help="text column of --input (default: message)")
    pr.add_argument("--output", metavar="FILE", help="write the input's columns, label and probability to FILE "
                    "instead of stdout: CSV, JSONL or Parquet by its extension (it appears only once complete); "
                    "with --dask, a directory of Parquet parts")
    pr.add_argument("--format", choices=["text", "jsonl"], default="text", help="stdout's format")
    pr.add_argument("--batch-size", type=int, default=8192,
                    help="messages read and scored at a time: memory stays bounded by it (default 8192)")
    pr.add_argument("--explain", action="store_true",
                    help="also show the tokens that moved each score most, found by leaving each token "
                         "out in turn (+: towards the positive label)")
    pr.add_argument("--top", type=int, default=5, metavar="K", help="tokens shown by --explain (default 5)")
    pr.add_argument("--workers", type=int, default=1, metavar="N",
                    help="score on N processes of one thread each, for large inputs: each loads the model "
                         "(a few seconds and about 320 MB each), output stays in input order (default 1)")
    _add_dask(pr, "score --input's files into --output DIR, a part-NNNNN.parquet per partition in input order")
    _add_backend(pr)
    _add_device(pr)
    pr.set_defaults(handler=cmd_predict)


def _add_index(commands) -> None:
    ix = _subparser(commands, "index", "a market sentiment index: per ticker and period, the estimated share of "
                    "bullish messages with its interval, from the messages' texts", EXAMPLES["index"])
    ix.add_argument("model_dir", metavar="MODEL_DIR")
    ix.add_argument("--input", nargs="+", required=True, metavar="FILES",
                    help="CSV, JSONL or Parquet files, directories of them or glob patterns")
    ix.add_argument("--out", required=True, metavar="FILE",
                    help="the index: .csv, .jsonl or .parquet (written whole, or not at all)")
    ix.add_argument("--freq", choices=FREQS, default="day", help="period of a row (default: day)")
    ix.add_argument("--time-column", default="created_at",
                    help="ISO 8601 times (UTC unless they say otherwise) or epoch seconds (default: created_at)")
    ix.add_argument("--ticker-column", metavar="COLUMN",
                    help="a message's ticker (default: its first cashtag; messages with none form a (none) row)")
    ix.add_argument("--text-column", default="message", help="text column (default: message)")
    ix.add_argument("--label-column", metavar="COLUMN", help="the authors' tags, if the files have them: counted "
                                                            "beside the estimate, never used for it (default: "
                                                            "the model's label column)")
    ix.add_argument("--method", choices=list(METHODS),
                    help=f"quantification method (default: {default_method(False)}, or {default_method(True)} "
                         "with --calibrate; see docs/index.md)")
    ix.add_argument("--level", type=float, default=0.9, help="the interval's coverage (default 0.9)")
    ix.add_argument("--calibrate", metavar="FILE", help="tagged messages of this market (text and label columns "
                                                         "as for training): the adjusted methods read how the "
                                                         "model scores them instead of its validation split")
    ix.add_argument("--batch-size", type=int, default=8192, help="messages scored at once (default 8192)")
    ix.add_argument("--plot", metavar="FILE.png", help="also draw each ticker's estimated share over time")
    ix.add_argument("--json", action="store_true", help="print a summary as JSON")
    _add_dask(ix, "sum each partition's messages on the workers; the index is the same as without")
    _add_device(ix)
    ix.set_defaults(handler=cmd_index)


def _add_dask(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--dask", metavar="ADDRESS", help=f"run on Dask: a scheduler's address (tcp://host:8786) or "
                        f"local:N for N worker processes here; {what} (needs stocksent[dask]; see docs/dask.md)")


def _add_calibrate(commands) -> None:
    ca = _subparser(commands, "calibrate", "add to a saved model the calibration set the index's adjusted methods "
                    "read: how it scores its validation split (models save one since format 2)",
                    EXAMPLES["calibrate"])
    ca.add_argument("model_dir", metavar="MODEL_DIR")
    ca.add_argument("--data", metavar="PATH", help="the tagged file the model was trained on (default: the one "
                                                   "it records, found as for training)")
    ca.add_argument("--out", metavar="DIR", help="write the model with it here (default: MODEL_DIR itself)")
    ca.set_defaults(handler=cmd_calibrate)


def _add_export(commands) -> None:
    ex = _subparser(commands, "export", "write a saved model in a portable format", EXAMPLES["export"])
    ex.add_argument("model_dir", metavar="MODEL_DIR")
    ex.add_argument("--onnx", action="store_true", required=True,
                    help="write MODEL_DIR/model.onnx (dynamic batch and length), for onnxruntime")
    ex.set_defaults(handler=cmd_export)


def _add_serve(commands) -> None:
    sv = _subparser(commands, "serve", "score messages over HTTP (FastAPI on uvicorn)", EXAMPLES["serve"])
    sv.add_argument("model_dir", metavar="MODEL_DIR")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, help="server processes, each with the model loaded")
    _add_backend(sv)
    sv.add_argument("--threads", type=int, default=1, help="compute threads per worker")
    sv.add_argument("--max-texts", type=int, default=1024, help="texts per request (more: 413)")
    sv.add_argument("--max-explain-texts", type=int, default=32,
                    help="texts per /v1/explain request, each costing one scoring per token (more: 413)")
    sv.add_argument("--max-chars", type=int, default=20_000, help="characters per text (more: 413)")
    sv.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024, help="request body size (more: 413)")
    sv.set_defaults(handler=cmd_serve)


def _add_baseline(commands) -> None:
    bl = _subparser(commands, "baseline", "score the majority class, TF-IDF + logistic regression, NBSVM and "
                    "fastText on the split a preset trains on", EXAMPLES["baseline"])
    bl.add_argument("--model", choices=["tfidf", "nbsvm", "fasttext", "all"], default="all",
                    help="which baseline (default: all; fastText where the package is installed: "
                         "pip install 'stocksent[fasttext]')")
    bl.add_argument("--preset", choices=list(PRESETS), default="default",
                    help="whose split and preprocessing to use (default: default)")
    bl.add_argument("--data", metavar="PATH", help=DATA_HELP)
    bl.add_argument("--group-duplicates", action="store_true", help="keep every copy of a text in one split")
    bl.add_argument("--seed", type=int, help="seed of the split")
    bl.add_argument("--json", action="store_true", help="print one JSON object")
    bl.set_defaults(handler=cmd_baseline)


def _add_report(commands) -> None:
    rp = _subparser(commands, "report", "write report.md and plots: each model beside the baselines on "
                    "its own split (a --seeds directory: every seed, mean and std)", EXAMPLES["report"])
    rp.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
    rp.add_argument("--out", metavar="DIR", help="report folder (default: MODEL_DIR/report for one model, "
                                                 "else reports/)")
    rp.add_argument("--data", metavar="PATH", help="data file (default: the one the model was trained on)")
    rp.add_argument("--ood", metavar="FILE", help="also score the model and the baselines on every message of "
                    "this labelled file of other markets or years (out of domain); its labels are never trained on")
    rp.add_argument("--baselines", default="all", metavar="LIST",
                    help="comma-separated baselines fitted beside each model: tfidf, nbsvm, fasttext or all "
                         "(default: all; fastText where installed)")
    rp.add_argument("--index", metavar="FILE", help="also draw the first model's market index of this tagged "
                                                  "file with times (stocksent index), beside its tagged shares")
    rp.add_argument("--index-freq", choices=FREQS, default="month", help="--index's period (default: month)")
    rp.add_argument("--index-ticker-column", metavar="COLUMN", help="--index's ticker column (default: first "
                                                                    "cashtag)")
    rp.add_argument("--json", action="store_true", help="print report.json's summary")
    rp.set_defaults(handler=cmd_report)


def _add_tune(commands) -> None:
    tu = _subparser(commands, "tune", "search hyperparameters with Optuna on the validation split; the best "
                    "config is written for train --config", EXAMPLES["tune"])
    tu.add_argument("--preset", choices=list(PRESETS), default="default", help="config the search starts from")
    tu.add_argument("--config", metavar="FILE", help="a config.json to start from instead of a preset")
    tu.add_argument("--data", metavar="PATH", help=DATA_HELP)
    tu.add_argument("--out", metavar="DIR", default="runs/tune", help="where trials.csv and best_config.json go")
    _add_settings(tu, "tune")
    tu.add_argument("--force", action="store_true", help="replace the results of an earlier search in --out")
    tu.set_defaults(handler=cmd_tune)


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where to run the model (auto: a CUDA GPU when present)")


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="onnx runs MODEL_DIR/model.onnx with onnxruntime (see stocksent export)")


def cmd_baseline(args: argparse.Namespace) -> int:
    from .evaluation.baseline import chosen, run_baselines

    config = preset(args.preset).override("data", seed=args.seed, group_duplicates=args.group_duplicates)
    models = chosen(args.model)
    corpus = load_corpus(find_data(args.data), config.data, config.preprocess)
    result = run_baselines(config, corpus, models)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name in [key for key in result if key != "split"]:
        for split in ("val", "test"):
            m = result[name][split]
            print(f"{name:<13}{split:<5} accuracy {m['accuracy']:.4f}  f1 {m['f1']:.4f}  "
                  f"roc_auc {m['roc_auc']:.4f}  n {m['n']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .evaluation.baseline import chosen
    from .evaluation.report import index_section, model_dirs, score, write_report

    baselines = tuple(dict.fromkeys(name for given in args.baselines.split(",") for name in chosen(given.strip())))
    dirs = [Path(d) for d in args.model_dirs]
    out = Path(args.out) if args.out else (dirs[0] / "report" if len(dirs) == 1 else Path("reports"))
    if args.out:  # a named --out that cannot be made fails now, not after the scoring
        out.mkdir(parents=True, exist_ok=True)
    corpora = CorpusCache()
    groups = []
    for folder in dirs:
        runs = []
        for model_dir in model_dirs(folder):
            _log(f"scoring {model_dir} and fitting the baselines on its split")
            runs.append(score(model_dir, args.data, corpora, baselines, args.ood))
        groups.append(runs)
    extra = index_section(groups[0][0].model_dir, Path(args.index), out, args.index_freq,
                          args.index_ticker_column) if args.index else []
    path = write_report(groups, out, extra)
    if args.json:
        print((out / "report.json").read_text(encoding="utf-8"), end="")
    else:
        print(f"report written to {path}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .training.tune import BEST_CONFIG, TRIALS, format_params, tune

    settings = TuneConfig(**_given(args, "tune", TuneConfig))
    base = Config.from_dict(_read_config_file(Path(args.config))) if args.config else preset(args.preset)
    base = base.override("run", **_given(args, "tune", RunConfig))
    path, corpora = find_data(args.data), CorpusCache()
    out = Path(args.out)
    if not args.force and ((out / TRIALS).exists() or (out / BEST_CONFIG).exists()):
        raise StocksentError(f"{out} already holds a search's results; use --force to replace them, or another --out")
    result = tune(base, lambda config: corpora.load(path, config.data, config.preprocess), settings, out, log=_log)
    print(f"best validation accuracy {result['best_value']:.4f} after {result['trials']} trials: "
          + format_params(result["best_params"]))
    print(f"trials in {out / TRIALS}; train it with: stocksent train --config {out / BEST_CONFIG}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    check_range("--batch-size", args.batch_size, 1, MAX_BATCH)
    check_level(args.level)
    clf = SentimentClassifier.load(Path(args.model_dir), args.device)
    predictor = clf.predictor_
    tagged = file_calibration(predictor, Path(args.calibrate), _log) if args.calibrate else None
    estimator = estimator_for(predictor, args.method, tagged, args.level, args.model_dir)
    columns = Columns(args.text_column, args.time_column, args.ticker_column,
                      args.label_column or predictor.config.data.label_column)
    sources = input_files(args.input)
    if args.dask:
        from .dask.commands import index_archive

        with _on_dask(args.dask) as client, _parts_progress("index") as progress:
            rows = index_archive(client, sources, clf, Path(args.out), args.freq, columns, estimator, progress,
                                 args.batch_size, args.device)
    else:
        with _message_bar(to_file=True) as bar:
            rows = index_files(predictor, sources, Path(args.out), args.freq, columns, estimator, args.batch_size,
                               bar.update)
    if args.plot:
        from .evaluation.report import plot_index

        plot_index(rows, Path(args.plot))
    summary = {"out": args.out, "rows": len(rows["ticker"]), "tickers": len(set(rows["ticker"])),
               "messages": int(sum(rows["messages"])), "method": estimator.method,
               "calibration": len(tagged[0]) if tagged else ("none" if estimator.calibration is None else "model")}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['rows']:,} rows ({summary['tickers']:,} tickers) from {summary['messages']:,} messages, "
              f"method {estimator.method}, written to {args.out}" + (f"; picture in {args.plot}" if args.plot else ""))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    clf = SentimentClassifier.load(Path(args.model_dir))
    count = calibrate(clf, args.data, _log)
    out = Path(args.out or args.model_dir)
    clf.save(out)
    print(f"calibration set of {count:,} validation messages saved with the model in {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    path = export_onnx(Path(args.model_dir))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serving.serve import ServeConfig, run
    except ImportError:
        raise StocksentError("serving needs FastAPI and uvicorn: pip install 'stocksent[serve]'") from None
    check_range("--port", args.port, 1, 65535)
    check_range("--workers", args.workers, 1, MAX_WORKERS)
    settings = ServeConfig(model_dir=args.model_dir, backend=args.backend, threads=args.threads,
                           max_texts=args.max_texts, max_explain_texts=args.max_explain_texts,
                           max_chars=args.max_chars, max_body_bytes=args.max_body_bytes)
    run(settings, args.host, args.port, args.workers, log=_log)
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .training.pretrain import OBJECTIVES, pretrain, read_text_files

    out = Path(args.out)
    check_destination(out, resume=args.resume, force=args.force)
    shape, prep, settings = _pretrain_config(args)
    texts = read_text_files(args.text, args.text_column)
    run = RunConfig(**_given(args, "pretrain", RunConfig))
    with threads(run.threads):
        pretrain(texts, shape, prep, settings, out, args.resume, _log, progress_bar("pretrain"), run.device)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps({"model_dir": str(out), **metrics}, indent=2))
    else:
        perplexity = OBJECTIVES[settings.objective].perplexity
        measure = f"perplexity {metrics['val_perplexity']:.1f} " if perplexity else ""
        print(f"held-out {measure}(loss {metrics['val_loss']:.4f}) after "
              f"{metrics['seconds']:.0f} s; pretrained model in {out}; train from it with: "
              f"stocksent train --init {out}")
    return 0


def _pretrain_config(args: argparse.Namespace) -> tuple[ModelConfig, PreprocessConfig, PretrainConfig]:
    """The preset's network shape, preprocessing and pretraining settings (next-word, unless
    --objective), with the flags given applied."""
    from .training.pretrain import pretrain_settings

    base = preset(args.preset)
    shape = dataclasses.replace(base.model, **_given(args, "pretrain", ModelConfig))
    settings = pretrain_settings(base, **{"objective": "next-word", **_given(args, "pretrain", PretrainConfig)})
    return shape, base.preprocess, settings


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.if_missing and not args.source:
        path, fetched = ensure_data(args.url)
        print(f"saved {path} (sha256 {file_sha256(path)})" if fetched else f"data found: {path}")
        return 0
    path = fetch(args.source, url=args.url)
    print(f"saved {path} (sha256 {file_sha256(path)})")
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    print(find_data(args.data))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.seeds and args.seed is not None:
        raise StocksentError("give --seed or --seeds, not both")
    out = Path(args.out or f"models/{args.preset or 'default'}")
    check_destination(out, args.seeds or (), args.resume, args.force or args.reuse)
    config, named = _train_config(args)
    before = _reusable(args, out, config)
    if before is not None:
        _log(f"{out}: trained before with this recipe on this data; reused (--force trains again)")
        _report(before, out, args.json)
        return 0
    world = join(config.run.device)
    log = _log if world.main else (lambda message: None)
    board = TensorBoardLog(Path(args.tensorboard) / out.name) if args.tensorboard and world.main else None
    try:
        metrics = train_file(config, out, args.data, args.seeds or (), args.resume, args.unlabelled or (), named,
                             args.preset, log, progress_bar("train") if world.main else None, world, board,
                             progress_bar("pretrain") if world.main else None, args.val_data, args.test_data)
        if world.main and args.seeds:
            _report_seeds(metrics, out)
        elif world.main:
            _report(metrics, out, args.json)
        return 0
    except KeyboardInterrupt:
        log(f"stocksent: interrupted; continue with the same command and --resume (--out {out})"
            if resumable(out, args.seeds or ()) else "stocksent: interrupted before anything was saved; run the "
                                                    "same command again")
        return 130
    finally:
        if board is not None:
            board.close()
        leave(world)


def _reusable(args: argparse.Namespace, out: Path, config: Config) -> dict[str, Any] | None:
    """With --reuse (and not --force), the metrics of the model `out` already holds when this
    command would train it again (one run, fresh, from nothing but --data)."""
    plain = not (args.seeds or args.resume or args.unlabelled or args.val_data or args.test_data or config.run.init)
    return trained_before(out, config, args.data) if args.reuse and not args.force and plain else None


def _report_seeds(summary: dict[str, Any], out: Path) -> None:
    for key in ("accuracy", "f1", "roc_auc"):
        stats = summary[key]
        print(f"test {key:<9} mean {stats['mean']:.4f}  std {stats['std']:.4f}  over seeds "
              f"{' '.join(map(str, summary['seeds']))}: {' '.join(f'{v:.4f}' for v in stats['values'])}")
    print(f"models in {out}/seed-N; summary in {out / 'seeds.json'}")


def _train_config(args: argparse.Namespace) -> tuple[Config, set[str] | None]:
    """The preset (or --config) with the flags given applied, and the settings the command names:
    the flags given, or None (every setting) for a --config file."""
    config = Config.from_dict(_read_config_file(Path(args.config))) if args.config else preset(args.preset or "default")
    named: set[str] = set()
    for name, section in SECTIONS.items():
        given = _given(args, "train", section)
        config = config.override(name, **given)
        named |= set(given)
    return config, None if args.config else named


def _read_config_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StocksentError(f"cannot read config {path}: {exc}") from None


def _report(metrics: dict, out: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"model_dir": str(out), **metrics}, indent=2))
        return
    for name in ("val", "test"):
        m = metrics[name]
        print(f"{name:<5} accuracy {m['accuracy']:.4f}  f1 {m['f1']:.4f}  roc_auc {m['roc_auc']:.4f}  "
              f"n {m['n']}  (majority class: {m['majority_accuracy']:.4f})")
    print(f"model saved to {out} (best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
          f"{metrics['train_seconds']:.0f} s of training)")


def cmd_adapt(args: argparse.Namespace) -> int:
    from .training.pretrain import read_text_files

    check_settings(args.threshold, args.rounds)
    source, out = Path(args.model_dir), Path(args.out)
    if out.resolve() == source.resolve():
        raise StocksentError("--out must be another directory than MODEL_DIR, which is kept as it was")
    check_destination(out, force=args.force)
    clf = SentimentClassifier.load(source).set_params(verbose=True)  # its rounds, told on stderr
    tags = file_calibration(clf.predictor_, Path(args.calibrate), _log) if args.calibrate else None
    metrics = adapt_to(clf, read_text_files(args.text, args.text_column), args.data, args.threshold,
                       args.rounds, args.priors, _log, market_tags=tags)
    clf.save(out)
    if args.json:
        print(json.dumps({"model_dir": str(out), **metrics}, indent=2))
        return 0
    rounds = metrics["adaptation"]["rounds"]
    print(f"adapted to {metrics['adaptation']['messages']} messages: {len(rounds)} round(s) of the n-gram part"
          + (f", {rounds[-1]['kept']} sure guesses" if rounds else "")
          + (f", priors for {metrics['adaptation']['priors']['tickers']} tickers" if args.priors else "")
          + f"; model saved to {out}; on the training data's test split it now scores accuracy "
          f"{metrics['test']['accuracy']:.4f}, ROC-AUC {metrics['test']['roc_auc']:.4f}")
    for row in metrics["adaptation"]["checks"]:
        print(f"checked: {row['metric']} on {row['on']} {row['before']:.4f} -> {row['after']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    clf = SentimentClassifier.load(Path(args.model_dir), args.device)
    metrics = evaluate_split(clf, args.data, args.split, _log)
    if args.json:
        print(json.dumps({"split": args.split, **metrics}, indent=2))
    else:
        _print_evaluation(args.split, metrics)
    return 0


def _print_evaluation(split: str, m: dict) -> None:
    print(f"{split} split: {m['n']} messages")
    print(f"accuracy  {m['accuracy']:.4f}   (majority class '{m['majority_label']}': {m['majority_accuracy']:.4f})")
    print(f"roc_auc   {m['roc_auc']:.4f}")
    print(f"{'label':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, c in m["per_class"].items():
        print(f"{name:<10}{c['precision']:>10.4f}{c['recall']:>10.4f}{c['f1']:>10.4f}{c['support']:>10}")
    labels, matrix = m["confusion"]["labels"], m["confusion"]["matrix"]
    print("confusion (rows true, columns predicted): " +
          "; ".join(f"{t}: {dict(zip(labels, row))}" for t, row in zip(labels, matrix)))


def cmd_predict(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise StocksentError("--top must be at least 1")
    check_range("--batch-size", args.batch_size, 1, MAX_BATCH)
    check_range("--workers", args.workers, 1, MAX_WORKERS)
    if args.output and (args.explain or args.input in (None, "-")):
        raise StocksentError("--output takes --input FILE and no --explain")
    # Loaded here even with workers, so that a bad model is one line before any process starts.
    clf = SentimentClassifier.load(Path(args.model_dir), args.device, args.backend)
    if args.dask:
        return _predict_on_dask(args, clf)
    with _message_bar(to_file=bool(args.output)) as bar:
        if args.output:
            count = clf.predict_file(args.input, args.output, args.text_column, args.batch_size, args.workers,
                                     bar.update)
            _log(f"scored {count:,} messages into {args.output}")
            return 0
        work = functools.partial(explained, top=args.top if args.explain else 0)
        scored = scored_chunks(clf.predictor_, _predict_inputs(args), args.batch_size, args.workers, work)
        with contextlib.closing(scored):  # stops the workers when stdout closes early
            for size, result in scored:
                sys.stdout.write(_format_predictions(clf.labels, *result, fmt=args.format))
                bar.update(size)
    return 0


def _predict_on_dask(args: argparse.Namespace, clf: SentimentClassifier) -> int:
    from .dask.commands import predict_archive

    if args.texts or args.input in (None, "-") or not args.output or args.explain:
        raise StocksentError("--dask scores files: give --input FILES and --output DIR (no TEXT, stdin or --explain)")
    if args.workers != 1 or args.backend != "torch":
        raise StocksentError("with --dask the cluster's workers score, with the torch backend: leave out --workers "
                             "and --backend")
    sources = input_files([args.input])
    with _on_dask(args.dask) as client, _parts_progress("predict") as progress:
        count = predict_archive(client, sources, clf, Path(args.output), args.text_column, args.batch_size,
                                progress, args.device)
    _log(f"scored {count:,} messages into {args.output}")
    return 0


@contextlib.contextmanager
def _on_dask(address: str) -> Iterator[Any]:
    from .dask.cluster import connected

    with connected(address) as client:
        _log(f"running on Dask: {len(client.scheduler_info().get('workers', {}))} workers ({address})")
        yield client


@contextlib.contextmanager
def _parts_progress(desc: str) -> Iterator[Callable[[int, int], None]]:
    """How a Dask job's progress is shown: a bar of partitions on a terminal, else a line at
    each tenth of them."""
    if not sys.stderr.isatty():
        def tell(done: int, total: int) -> None:
            if done * 10 // total > (done - 1) * 10 // total:
                _log(f"{desc}: {done:,} of {total:,} partitions done")

        yield tell
        return
    from tqdm import tqdm

    with tqdm(desc=desc, unit=" part", leave=False, file=sys.stderr) as bar:
        def show(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield show


def _message_bar(to_file: bool = False) -> Any:
    """A count of messages scored on stderr, shown only when it is a terminal and the output goes
    elsewhere (a file or a pipe), so that it never writes over the predictions."""
    from tqdm import tqdm

    return tqdm(desc="predict", unit=" msg", unit_scale=True, leave=False, file=sys.stderr,
                disable=not sys.stderr.isatty() or (sys.stdout.isatty() and not to_file))


def _predict_inputs(args: argparse.Namespace) -> Iterable[str]:
    if args.texts and args.input:
        raise StocksentError("give messages as arguments or with --input, not both")
    if args.texts:
        return iter(args.texts)
    if args.input and args.input != "-":
        return (text for path in input_files([args.input]) for text in read_texts(path, args.text_column))
    if args.input is None and sys.stdin.isatty():
        raise StocksentError("no messages: pass TEXT arguments, --input FILE, or pipe lines on stdin")
    return (line.rstrip("\n") for line in sys.stdin)


def _format_predictions(labels: tuple[str, str], texts: list[str], probs: Any, explanations: list | None,
                        fmt: str) -> str:
    lines = []
    for text, p, why in zip(texts, probs, explanations or [None] * len(texts)):
        label = labels[int(p >= 0.5)]
        if fmt == "jsonl":
            record = {"text": text, "label": label, f"prob_{labels[1]}": round(float(p), 6)}
            if why is not None:
                record["explanation"] = [{"token": t, "effect": round(e, 6)} for t, e in why]
            lines.append(json.dumps(record, ensure_ascii=False))
        else:
            lines.append(f"{label}\t{p:.4f}\t{' '.join(text.split())}")
            if why is not None:
                lines.append("\t" + "  ".join(f"{t} {e:+.3f}" for t, e in why))
    return "\n".join(lines) + "\n"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
