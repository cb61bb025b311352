"""Planted bugs: does each get caught by the tests that cover its module?

    python bench/mutants.py [--only SUBSTRING ...] [--named] [--json FILE] [--root DIR] [--tests FILE ...]
                            [--timeout SECONDS] [--skip-baseline] [--list]

Each entry of MUTANTS is one plausible one-line bug: a module, an exact snippet of its source,
what replaces it, and the test files that cover that module. For each, the project's src/ is
copied to a temporary folder, the one replacement is made there (an error if the snippet is not
found exactly once), and pytest runs the covering test files against the copy (PYTHONPATH wins
over the editable install; a guard plugin stops the run if `stocksent` would be imported from
anywhere else). A mutant is caught when pytest fails; first, the same tests run once on an
unchanged copy, so that a failure means the bug. src/ itself is never written to.

Modules are named by their dotted names: renaming one means editing its name here, nothing else.
--root points at another checkout (its src/ and tests/); --tests runs other test files than the
covering ones (to measure what an older set of tests caught).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = "StockTwits_SPY_Sentiment_2017.gz"  # what stocksent.data.dataset looks for in ../shared/data
GUARD_RC = 97  # the guard's exit status: the copy would not be the code under test
PYTEST_FLAGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "_mutants_guard"]

# The modules planted in, by their dotted names: a module moved or renamed is one line here.
SERVE = "stocksent.serving.serve"
SPLIT = "stocksent.data.split"
METRICS = "stocksent.scoring.metrics"
PRIORS = "stocksent.scoring.priors"
ADAPT = "stocksent.training.adapt"
QUANTIFY = "stocksent.scoring.quantify"
INDEX = "stocksent.scoring.index"
TABLE = "stocksent.data.table"
STORE = "stocksent.data.store"
STREAM = "stocksent.scoring.stream"
NGRAMS = "stocksent.scoring.ngrams"
PREPROCESS = "stocksent.text.preprocess"
FOLDED = "stocksent.nets.folded"
DASK_ARCHIVE = "stocksent.dask.archive"
MODEL = "stocksent.nets.model"
CORPUS = "stocksent.data.corpus"
TRAIN = "stocksent.training.train"
PRETRAIN = "stocksent.training.pretrain"
OPTIM = "stocksent.training.optim"
MEMBERS = "stocksent.training.members"
RUNS = "stocksent.training.runs"

# The test files that cover each module (a mutant may name others).
COVERS = {
    SERVE: ("tests/test_serve.py",),
    SPLIT: ("tests/test_split.py",),
    METRICS: ("tests/test_metrics.py",),
    PRIORS: ("tests/test_priors.py",),
    ADAPT: ("tests/test_adapt.py",),
    QUANTIFY: ("tests/test_quantify.py",),
    FOLDED: ("tests/test_folded.py",),
    INDEX: ("tests/test_index.py",),
    TABLE: ("tests/test_table.py",),
    STORE: ("tests/test_store.py",),
    STREAM: ("tests/test_stream.py",),
    NGRAMS: ("tests/test_ngrams.py",),
    PREPROCESS: ("tests/test_preprocess.py",),
    DASK_ARCHIVE: ("tests/test_dask.py",),
    MODEL: ("tests/test_model.py",),
    CORPUS: ("tests/test_runs.py",),
    TRAIN: ("tests/test_train.py",),
    PRETRAIN: ("tests/test_runs.py",),
    OPTIM: ("tests/test_optim.py",),
    MEMBERS: ("tests/test_members.py",),
    RUNS: ("tests/test_runs.py",),
}


@dataclass(frozen=True)
class Mutant:
    module: str  # dotted name, e.g. "stocksent.scoring.priors"
    original: str  # exact source text, found once in the module
    replacement: str
    description: str
    tests: tuple[str, ...] = ()  # covering test files; empty: COVERS[module]
    named: bool = False  # one of the bugs a review found the tests missing

    def covering(self) -> tuple[str, ...]:
        return self.tests or COVERS[self.module]


def named(module: str, original: str, replacement: str, description: str) -> Mutant:
    return Mutant(module, original, replacement, description, named=True)


def fresh(module: str, original: str, replacement: str, description: str) -> Mutant:
    return Mutant(module, original, replacement, description)


MUTANTS: list[Mutant] = [
    # The bugs the review planted and the tests missed.
    named(SERVE, 'received += len(message.get("body", b""))', 'received = len(message.get("body", b""))',
          "body limit counts only the last chunk of a chunked upload"),
    named(SPLIT, "np.where(cum[group_end] <= train_cut, 0,", "np.where(cum <= train_cut, 0,",
          "grouped split cuts the group at the training cut into training and validation"),
    named(METRICS, "predicted = (np.asarray(prob) >= 0.5)", "predicted = (np.asarray(prob) > 0.5)",
          "p = 0.5 counted as the negative label"),
    named(METRICS, "precision = tp / confusion[:, k].sum() if confusion[:, k].sum() else 0.0",
          "precision = tp / confusion[k, :].sum() if confusion[k, :].sum() else 0.0",
          "precision computed over the true labels (the recall's axis)"),
    named(PRIORS, "or tickers != sorted(set(tickers)):", "or tickers != sorted(tickers):",
          "saved priors with a ticker repeated load"),
    named(PRIORS, "or tickers != sorted(set(tickers)):", "or len(set(tickers)) != len(tickers):",
          "saved priors with unsorted tickers load"),
    named(ADAPT, "if not 0.5 <= threshold < 1.0:", "if not 0.5 <= threshold <= 1.0:",
          "a threshold of 1.0 accepted"),
    named(TABLE, "if not columns or len(set(columns)) != len(columns):", "if not columns:",
          "duplicate output column names accepted"),
    named(STORE, "            os.fsync(f.fileno())", "            f.fileno()",
          "no fsync of the file before the atomic rename"),

    # A fresh sample: plausible one-line bugs, written from the modules' source.
    fresh(SERVE, "if not declared.isdigit() or int(declared) > self.max_bytes:",
          "if not declared.isdigit() or int(declared) >= self.max_bytes:",
          "a declared body of exactly the limit refused"),
    fresh(SERVE, "if received > self.max_bytes:", "if received >= self.max_bytes:",
          "a chunked body of exactly the limit refused"),
    fresh(SERVE, "if len(texts) > most:", "if len(texts) >= most:", "exactly max_texts texts refused"),
    fresh(SERVE, "_check_limits(body.texts, settings.max_explain_texts, settings.max_chars)",
          "_check_limits(body.texts, settings.max_texts, settings.max_chars)",
          "explain checked against the predict limit"),
    fresh(SERVE, "label = request.app.state.classifier.labels[int(prob >= 0.5)]",
          "label = request.app.state.classifier.labels[int(prob > 0.5)]",
          "server labels p = 0.5 negative"),
    fresh(SERVE, "done.set_result(probs[start:start + len(batch)])", "done.set_result(probs[:len(batch)])",
          "batched requests all get the first request's scores"),
    fresh(SERVE, "if min(limits) < 1 or self.threads < 0:", "if min(limits) < 0 or self.threads < 0:",
          "a limit of 0 accepted"),
    fresh(SERVE, "if longest > max_chars:", "if longest >= max_chars:", "a text of exactly max_chars refused"),
    fresh(SERVE, "while total < self.max_batch and not self.queue.empty():", "while not self.queue.empty():",
          "batcher joins requests past max_batch texts"),

    fresh(SPLIT, "cut_train = int(n * (1 - val_fraction - test_fraction))",
          "cut_train = int(n * (1 - val_fraction))", "plain split's training cut ignores the test fraction"),
    fresh(SPLIT, 'if len(part) == 0 and (name != "test" or test_fraction)]', 'if len(part) == 0 and name != "test"]',
          "an empty test split asked for passes"),
    fresh(SPLIT, "is_last[:-1] = sorted_keys[1:] != sorted_keys[:-1]",
          "is_last[:-1] = sorted_keys[1:] == sorted_keys[:-1]", "group ends found wrongly"),
    fresh(SPLIT, "np.where(cum[group_end] <= val_cut, 1, 2)", "np.where(cum[group_end] < val_cut, 1, 2)",
          "grouped validation cut off by one"),
    fresh(SPLIT, "test = cfg.test_fraction if test_fraction is None else test_fraction",
          "test = cfg.test_fraction", "split_messages ignores its test_fraction argument"),
    fresh(SPLIT, "train_cut = int(n * (1 - val_fraction - test_fraction))",
          "train_cut = int(n * (1 - val_fraction))", "grouped split's training cut ignores the test fraction"),

    fresh(METRICS, "majority = int(np.bincount(labels, minlength=2).argmax())",
          "majority = int(np.bincount(labels, minlength=2).argmin())", "majority label is the minority"),
    fresh(METRICS, "ranks[order[s:e]] = (s + e + 1) / 2.0", "ranks[order[s:e]] = (s + e) / 2.0",
          "ROC-AUC ranks off by a half"),
    fresh(METRICS, '"support": int(confusion[k, :].sum())', '"support": int(confusion[:, k].sum())',
          "support counts predictions, not true labels"),
    fresh(METRICS, "f1 = 2 * precision * recall / (precision + recall)",
          "f1 = precision * recall / (precision + recall)", "F1 without its factor 2"),
    fresh(METRICS, "fpr = np.concatenate([[0.0], fp / max(int((1 - labels).sum()), 1)])",
          "fpr = np.concatenate([[0.0], fp / max(int(labels.sum()), 1)])", "ROC false positive rate over positives"),
    fresh(METRICS, "for r in rows) / max(len(labels), 1)", "for r in rows) / max(len(rows), 1)",
          "ECE divided by the number of bins"),

    fresh(ADAPT, "sure = np.flatnonzero((guess >= threshold) | (guess <= 1 - threshold))",
          "sure = np.flatnonzero(guess >= threshold)", "sure negative guesses left out"),
    fresh(ADAPT, 'if done and len(sure) < (1 + MIN_GROWTH) * done[-1]["kept"]:',
          'if done and len(sure) < done[-1]["kept"]:', "rounds go on while the guesses barely grow"),
    fresh(ADAPT, "bullish = int(round(share * count))", "bullish = int(round((1 - share) * count))",
          "guesses kept in the bearish share"),
    fresh(ADAPT, "share = float(np.clip(calibration.trained_prior, low, high))", "share = float(estimated)",
          "the market's share moved past what its interval allows"),
    fresh(ADAPT, "moved = {t: float(np.clip(market, shares[t][1], shares[t][2])) for t in tickers}",
          "moved = {t: shares[t][0] for t in tickers}", "a ticker's prior moved past what its interval allows"),
    fresh(ADAPT, "if new[metric] < old[metric] - MAX_FALL:", "if new[metric] < old[metric] - 100 * MAX_FALL:",
          "an adaptation that scores worse let through"),
    fresh(ADAPT, "_logit(market) - trained)", "trained - _logit(market))", "market shift of the wrong sign"),
    fresh(QUANTIFY, "tpr, fpr = pcc(cal.values, cal.positives), pcc(cal.values, cal.negatives)",
          "tpr, fpr = pcc(cal.values, cal.negatives), pcc(cal.values, cal.positives)", "PACC's rates swapped"),
    fresh(QUANTIFY, "np.where(safe, (observed - fpr) /", "np.where(safe, (observed - tpr) /",
          "ACC adjusts from the wrong rate"),
    fresh(QUANTIFY, "low, high = np.where(value > 0, prior, low), np.where(value > 0, high, prior)",
          "low, high = np.where(value < 0, prior, low), np.where(value < 0, high, prior)",
          "EM's bracket kept on the wrong side"),
    fresh(QUANTIFY, "return float(np.sqrt(max(1.0 - float(coefficient[best]) - chance, 0.0)))",
          "return float(np.sqrt(max(1.0 - float(coefficient[best]), 0.0)))", "misfit keeps what chance gives"),
    fresh(QUANTIFY, "best = int(np.argmax(coefficient))", "best = int(np.argmin(coefficient))",
          "misfit measured from the farthest mix"),
    fresh(ADAPT, "if found > MAX_MISFIT:", "if found > 10 * MAX_MISFIT:", "a market unlike the model's let through"),
    fresh(FOLDED, "n = min(-(-alive[t] // min_rows) * min_rows, batch)", "n = alive[t]",
          "the fold's products take however many rows are going"),
    fresh(ADAPT, "return adapted.with_part(CalibrationSet(proba, validation[1], trained_prior))",
          "return adapted", "an adapted model keeps the calibration set of its old part"),
    fresh(INDEX, "getattr(total, name)[where] += getattr(part, name)",
          "getattr(total, name)[where] = getattr(part, name)", "merged sums overwrite instead of adding"),
    fresh(INDEX, "return ((days - (days + 3) % 7) * 86400)", "return ((days - days % 7) * 86400)",
          "weeks start on Thursday"),
    fresh(INDEX, '"agreement": (1 - np.sqrt(', '"agreement": (np.sqrt(', "agreement upside down"),
    fresh(INDEX, "* PROBA_UNITS).astype(np.int64))", "* PROBA_UNITS / 2).astype(np.int64))",
          "probabilities summed at half their value"),
    Mutant(INDEX, 'raise StocksentError(f"{where}: row {first + first_row}: time',
           'raise StocksentError(f"{where}: row {first + 1}: time', "a bad time's row counted from its chunk",
           ("tests/test_index.py", "tests/test_dask.py")),
    fresh(DASK_ARCHIVE, "found.append(Piece(*where, tuple(groups), start))\n                groups,",
          "found.append(Piece(*where, tuple(groups)))\n                groups,",
          "a partition's rows numbered from its own start, not its file's"),
    fresh(DASK_ARCHIVE, "if not _is_part(stray.name):", "if False:", "a killed attempt's leftovers kept in the output"),
    fresh(MODEL, "target[len(tensor):] = tensor[UNKNOWN]", "target[len(tensor):] = 0.0",
          "a grown word table's new words start at zero, not as the unknown word"),
    fresh(CORPUS, "np.concatenate([splits[\"train\"], splits.get(name, [])])", "splits[\"train\"]",
          "the data file's share of a split given as a file is lost, not trained on"),
    fresh(TRAIN, "return (losses * each).sum() / each.sum()", "return losses.mean()",
          "a balanced loss weighs every message alike"),
    fresh(NGRAMS, "z = x @ w + b + offset", "z = x @ w + b",
          "the n-gram part's corrections fitted without the source's logits under them"),
    fresh(PRETRAIN, 'shape["ngrams"] = pretrained.ngrams.longest', "pass",
          "a run corrects a part of longer n-grams than its own config scores"),
    fresh(ADAPT, "if not 0 <= rounds <= MAX_ROUNDS:", "if not 0 <= rounds < MAX_ROUNDS:",
          "MAX_ROUNDS rounds refused"),
    fresh(ADAPT, '"positive_share": round(float(guessed.mean()), 4)',
          '"positive_share": round(float(1 - guessed.mean()), 4)', "the record's positive share is the negative's"),
    fresh(ADAPT, "if not np.any((guess >= threshold) | (guess <= 1 - threshold)):",
          "if np.all((guess >= threshold) | (guess <= 1 - threshold)):", "no sure guess goes on silently"),

    fresh(TABLE, "if len(set(lengths.values())) > 1:", "if len(set(lengths.values())) > 2:",
          "chunks of three lengths refused, two accepted"),
    fresh(TABLE, "for line in f if line.strip())", "for line in f)",
          "blank lines of a text file read as messages"),
    fresh(TABLE, "            self._writer.write_table(table, row_group_size=table.num_rows)",
          "            self._writer.write_table(table, row_group_size=max(table.num_rows - 1, 1))",
          "Parquet row groups one row short"),
    fresh(TABLE, "        if table.num_rows:", "        if table.num_rows > 1:",
          "a Parquet chunk of one row dropped"),
    fresh(TABLE, "if set(rows) != set(columns):", "if not set(columns) <= set(rows):",
          "a chunk with extra columns accepted"),
    fresh(TABLE, 'if fmt in (None, "text"):', "if fmt is None:", "writing a .txt table not refused"),
    fresh(TABLE, 'gzipped = probe.read(2) == b"\\x1f\\x8b"', 'gzipped = probe.read(3) == b"\\x1f\\x8b"',
          "gzip never recognised by its magic bytes"),

    fresh(STORE, "os.chmod(tmp, 0o666 & ~UMASK)", "os.chmod(tmp, 0o600)",
          "saved files left owner-only, the umask ignored"),
    fresh(STORE, "        _fsync_dir(dest.parent)", "        pass", "no fsync of the folder after the rename"),
    fresh(STORE, "        return previous\n", "        return folder / WEIGHTS\n",
          "weights a crash left behind never loaded"),
    fresh(STORE, "if current == previous or not current.exists():", "if current == previous or current.exists():",
          "the weights config.json names are not kept while saving"),
    fresh(STORE, "(folder / PREVIOUS_WEIGHTS).unlink(missing_ok=True)", "pass",
          "previous weights left behind after a save"),
    fresh(STORE, "if hashlib.sha256(data).hexdigest() != expected_sha:",
          "if expected_sha and hashlib.sha256(data).hexdigest() != expected_sha:",
          "a config without a checksum loads weights unchecked"),
    fresh(STORE, 'raw.get("format_version") not in READABLE_VERSIONS:',
          'raw.get("format_version", FORMAT_VERSION) not in READABLE_VERSIONS:',
          "a config without a format version loads"),

    fresh(STREAM, "if len(chunk) >= size:", "if len(chunk) > size:", "chunks one text too long"),
    fresh(STREAM, "yield sizes[number], result", "yield sizes[0], result",
          "every chunk reported at the first's size"),
    fresh(STREAM, "np.where(prob >= 0.5, labels[1], labels[0])", "np.where(prob > 0.5, labels[1], labels[0])",
          "predict_file labels p = 0.5 negative"),
    fresh(STREAM, "written += size", "written = size", "predict_file counts only the last chunk"),
    fresh(STREAM, "if any(src.resolve() == Path(dst).resolve() for src in sources):",
          "if any(src == Path(dst) for src in sources):",
          "output over the input not seen through another spelling of the path"),
    fresh(STREAM, 'check_range("batch_size", batch_size, 1, MAX_BATCH)\n    return scored_parts',
          'check_range("batch_size", batch_size, 0, MAX_BATCH)\n    return scored_parts', "a batch size of 0 accepted"),
    fresh(STREAM, "    if chunk:\n", "    if len(chunk) > 1:\n", "a last chunk of one text dropped"),

    fresh(NGRAMS, "at = np.flatnonzero(left >= n)", "at = np.flatnonzero(left > n)",
          "n-grams ending a message left out"),
    fresh(NGRAMS, "first[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])",
          "first[1:] = (rows[1:] != rows[:-1]) & (keys[1:] != keys[:-1])", "n-gram pairs deduplicated wrongly"),
    fresh(NGRAMS, "return np.where(self.keys[at] == keys, self.weights[at], 0.0)", "return self.weights[at]",
          "unseen n-grams take a neighbour's weight"),
    fresh(NGRAMS, "kept = counts >= train.ngram_min_count", "kept = counts > train.ngram_min_count",
          "n-grams seen exactly min_count times dropped"),
    fresh(NGRAMS, "return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)",
          "return np.log(p / q).astype(np.float32)", "log-count ratio not normalised"),
    fresh(NGRAMS, "np.any(keys[1:] <= keys[:-1])", "np.any(keys[1:] < keys[:-1])", "saved repeated keys load"),
    fresh(NGRAMS, "at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)",
          "at = np.searchsorted(self.keys, keys)", "a key past the last one indexes out of range"),
    fresh(NGRAMS, "train.ngram_c, _weights(", "train.ngram_c / 2, _weights(",
          "L2 penalty doubled"),

    fresh(PREPROCESS, 'return found.group()[1:].upper() if found else ""',
          'return found.group()[1:] if found else ""', "first_ticker not upper-cased"),
    fresh(PREPROCESS, 'if "http" in text or "www." in text:', 'if "http" in text:', "www. links not coded"),
    fresh(PREPROCESS, '_TICKER_RE = re.compile(r"\\$[a-z]+")', '_TICKER_RE = re.compile(r"\\$[a-z]*")',
          "a lone $ is a cashtag"),
    fresh(PREPROCESS, '_HTML_ENTITY = re.compile(r"&#?\\w+;?")', '_HTML_ENTITY = re.compile(r"&#?\\w+;")',
          "HTML entities without ; kept"),
    fresh(PREPROCESS, "if ascii_only:", "if not ascii_only:", "fast path taken for non-ASCII text"),
    fresh(PREPROCESS, "_CONTROLS = bytes([*range(32), 127])", "_CONTROLS = bytes(range(32))",
          "DEL joins words"),
    fresh(TRAIN, '> self.best_val_loss * (1 + margin))', '> self.best_val_loss * (1 - margin))',
          "early stopping at a nearly level epoch"),
    fresh(OPTIM, ".index_select(0, rows).lerp_(g, 1 - beta1)", ".index_select(0, rows).lerp_(g, beta1)",
          "the sparse Adam's first moment decays at the wrong rate"),
    fresh(MEMBERS, "own = loss(logits, targets) * share", "own = loss(logits, targets)",
          "each member on its thread learns from the whole loss, not its share"),
    fresh(RUNS, 'or recorded.get("sha256") != file_sha256(find_data(data))', "",
          "a model trained on another data file reused"),
]


GUARD = '''\
import importlib.util
import os

import pytest


def pytest_configure(config):
    expected = os.path.realpath(os.environ["MUTANTS_SRC"])
    spec = importlib.util.find_spec("stocksent")
    origin = os.path.realpath(spec.origin) if spec is not None and spec.origin else "nowhere"
    if not origin.startswith(expected + os.sep):
        pytest.exit(f"stocksent would be imported from {origin}, not from the copy under {expected}",
                    returncode=%d)
''' % GUARD_RC


@dataclass
class Outcome:
    module: str
    description: str
    named: bool
    result: str  # caught, missed or timeout (counted as caught)
    rc: int | None
    seconds: float
    failed: str  # the first test that failed, or why the run stopped
    tests: list[str]


def module_path(src: Path, dotted: str) -> Path:
    """The file of a dotted module name under `src` (a package's __init__.py)."""
    base = src.joinpath(*dotted.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def check_mutants(mutants: list[Mutant], root: Path, tests_override: list[str]) -> list[str]:
    problems = []
    for m in mutants:
        path = module_path(root / "src", m.module)
        if not path.is_file():
            problems.append(f"{m.module}: no file {path}")
            continue
        found = path.read_text(encoding="utf-8").count(m.original)
        if found != 1:
            problems.append(f"{m.module} ({m.description}): the original {m.original!r} is found {found} times")
        if m.original == m.replacement:
            problems.append(f"{m.module} ({m.description}): the replacement changes nothing")
        for test in tests_override or m.covering():
            if not (root / test).is_file():
                problems.append(f"{m.module} ({m.description}): no test file {root / test}")
    return problems


def child_env(copy: Path, guard: Path, root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), str(guard)])
    env["MUTANTS_SRC"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written beside the tests
    # The tests find the data set in ../shared/data from the working directory; a checkout
    # elsewhere (--root) is pointed at this one's.
    if "STOCKSENT_DATA" not in env and not (root.parent / "shared" / "data" / DATA_FILE).is_file():
        ours = ROOT.parent / "shared" / "data" / DATA_FILE
        if ours.is_file():
            env["STOCKSENT_DATA"] = str(ours)
    return env


def run_tests(root: Path, work: Path, guard: Path, tests: list[str], mutant: Mutant | None,
              timeout: float) -> tuple[int | None, float, str]:
    """pytest on `tests` against a fresh copy of root/src with `mutant` applied: (exit status or
    None on timeout, seconds, output)."""
    copy = work / "src"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root / "src", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if mutant is not None:
        path = module_path(copy, mutant.module)
        text = path.read_text(encoding="utf-8")
        if text.count(mutant.original) != 1:
            raise SystemExit(f"{mutant.module}: {mutant.original!r} is not found exactly once in the copy")
        path.write_text(text.replace(mutant.original, mutant.replacement), encoding="utf-8")
    command = [sys.executable, "-m", "pytest", *tests, *PYTEST_FLAGS]
    start = time.monotonic()
    # A session of its own, so that a timeout stops the servers and workers the tests start too.
    process = subprocess.Popen(command, cwd=root, env=child_env(copy, guard, root), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        rc: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        rc = None
    return rc, time.monotonic() - start, output


def first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    if found:
        path, _, test = found.group(1).partition("::")
        return f"{Path(path).name}::{test}" if test else Path(path).name
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:80] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                        help="run the mutants whose module or description holds this (repeatable)")
    parser.add_argument("--named", action="store_true", help="run only the bugs the review found missed (*)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose src/ and tests/ are used")
    parser.add_argument("--tests", nargs="+", default=[], metavar="FILE",
                        help="run these test files (relative to --root) instead of the covering ones")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pytest run (default 600)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the tests pass without any mutant")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    chosen = [m for m in MUTANTS if (m.named or not args.named) and (not args.only or any(
        s.lower() in f"{m.module} {m.description}".lower() for s in args.only))]
    if not chosen:
        print("no mutant matches --only", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.module:26} {'*' if m.named else ' '} {m.description}")
        return 0
    problems = check_mutants(chosen, root, args.tests)
    if problems:
        print("the mutants do not fit the source:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="stocksent-mutants-") as tmp:
        work, guard = Path(tmp), Path(tmp) / "guard"
        guard.mkdir()
        (guard / "_mutants_guard.py").write_text(GUARD, encoding="utf-8")
        if not args.skip_baseline:
            tests = sorted({t for m in chosen for t in (args.tests or m.covering())})
            rc, seconds, output = run_tests(root, work, guard, tests, None, args.timeout * 2)
            if rc != 0:
                print(f"the tests fail without any mutant (exit status {rc}, {seconds:.0f} s): "
                      f"{first_failure(output)}\n{output[-3000:]}", file=sys.stderr)
                return 2
            print(f"baseline: {len(tests)} test files pass unchanged ({seconds:.0f} s)", flush=True)
        outcomes = []
        width = max(len(m.description) for m in chosen)
        for m in chosen:
            tests = list(args.tests or m.covering())
            rc, seconds, output = run_tests(root, work, guard, tests, m, args.timeout)
            if rc == GUARD_RC:
                print(output[-2000:], file=sys.stderr)
                return 2
            result = "timeout" if rc is None else "missed" if rc == 0 else "caught"
            outcome = Outcome(m.module, m.description, m.named, result, rc, round(seconds, 1),
                              "" if rc == 0 else "timed out" if rc is None else first_failure(output), tests)
            outcomes.append(outcome)
            print(f"{m.module.rsplit('.', 1)[-1]:11} {'*' if m.named else ' '} {m.description:{width}} "
                  f"{result:8} {seconds:5.0f} s  {outcome.failed}", flush=True)

    caught = sum(o.result != "missed" for o in outcomes)
    missed = len(outcomes) - caught
    for label, group in (("named (*)", [o for o in outcomes if o.named]),
                         ("fresh", [o for o in outcomes if not o.named])):
        if group:
            print(f"{label}: {sum(o.result != 'missed' for o in group)} of {len(group)} caught")
    timeouts = sum(o.result == "timeout" for o in outcomes)
    if timeouts:
        print(f"({timeouts} caught by running past --timeout)")
    print(f"{caught} caught, {missed} missed")
    if args.json:
        args.json.write_text(json.dumps({"root": str(root), "caught": caught, "missed": missed,
                                         "mutants": [asdict(o) for o in outcomes]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
