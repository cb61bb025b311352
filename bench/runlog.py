"""The results file of a bench script that runs many trainings: one row per run under a key
"recipe|size|seed", written after every run so that a rerun skips those already there, and the
curves and table cells read from it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load(out: Path) -> dict:
    return json.loads(out.read_text()) if out.exists() else {}


def save(results: dict, out: Path) -> None:
    """A bench script's results as JSON, its folder made if need be."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def record(results: dict, out: Path, key: str, row: dict) -> None:
    """Keep one run's row, print it and rewrite the file."""
    results[key] = row
    print(f"{key}: {json.dumps(row)}", flush=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


def curves(results: dict, metric: str) -> dict[str, dict[int, list[float]]]:
    """{recipe: {size: [the metric of each seed's run]}}, over the runs that scored it."""
    found: dict[str, dict[int, list[float]]] = {}
    for key, row in results.items():
        name, size, _ = key.split("|")
        if metric in row:
            found.setdefault(name, {}).setdefault(int(size), []).append(row[metric])
    return found


def cell(values: list[float] | None) -> str:
    """"mean ± std (runs)" of a table cell, blank without runs."""
    if not values:
        return ""
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f} ({len(values)})"
