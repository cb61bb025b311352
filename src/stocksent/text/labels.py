"""Labels and texts as callers give them: names, 0 / 1 or booleans, turned into 0 / 1 codes."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def spelled(value: Any) -> str:
    """How a label value is compared with label names: str() (so that Parquet booleans and
    integers match names "true" or "1"), stripped, lower case; a missing one (None, NaN, NA) is ""."""
    return "" if _missing(value) else str(value).strip().lower()


def name_codes(negative: str, positive: str) -> dict[str, int]:
    """Each label name, as spelled, and its code."""
    return {spelled(negative): 0, spelled(positive): 1}


def codes_only(classes: Iterable[Any]) -> bool:
    """Whether two classes are codes (0 / 1, False / True) rather than names."""
    return sorted(map(spelled, classes)) in (["0", "1"], ["false", "true"])


def text_list(texts: Iterable[str]) -> list[str]:
    """The texts as a list (from a list, tuple, numpy array or pandas Series), or a TypeError
    naming the first thing that is not a string."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"expected an iterable of strings (a list, array or Series), not {type(texts).__name__}")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"expected strings, but item {i} is {type(text).__name__}: {text!r:.40}")
    return batch


def texts_or_empty(values: Iterable[Any]) -> list[str]:
    """A table column's values as texts: a missing one (None, NaN, NA) is an empty message,
    anything else its str()."""
    return [value if isinstance(value, str) else "" if _missing(value) else str(value) for value in values]


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)  # NaN is the one value unequal to itself
    except TypeError:  # pandas' NA: its comparisons are NA, which has no truth value
        return True


def label_list(labels: Iterable[Any], n: int) -> list[Any]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise TypeError(f"labels must be an iterable of label values, not {type(labels).__name__}")
    values = list(labels)
    if len(values) != n:
        raise ValueError(f"{n} texts but {len(values)} labels: give one label per text")
    return values


def label_codes(labels: Iterable[Any], n: int, negative: str, positive: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0 / 1 and the two classes (negative first): the names `negative` and `positive`
    when the labels are those, else the two values in sorted order (0 / 1, False / True)."""
    values = label_list(labels, n)
    distinct = list(dict.fromkeys(values))
    if len(distinct) != 2:
        shown = ", ".join(repr(v) for v in distinct[:10])
        raise ValueError(f"labels hold {len(distinct)} distinct value(s) ({shown}); a SentimentClassifier "
                         "needs exactly two, with examples of each")
    names = name_codes(negative, positive)
    if sorted(map(spelled, distinct)) == sorted(names):
        distinct.sort(key=lambda v: names[spelled(v)])
    else:
        try:
            distinct.sort()
        except TypeError:
            pass  # values of mixed types: the order they first appear in
    classes = np.asarray(distinct)
    return known_codes(values, n, classes), classes


def known_codes(labels: Iterable[Any], n: int, classes: np.ndarray) -> np.ndarray:
    """Labels as 0 / 1 against known classes; a ValueError naming any other value."""
    values = label_list(labels, n)
    index = {value: code for code, value in enumerate(classes.tolist())}
    codes = np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
    if (codes < 0).any():
        unknown = sorted({repr(v) for v, c in zip(values, codes) if c < 0})[:10]
        raise ValueError(f"unknown label value(s) {', '.join(unknown)}; this model knows "
                         f"{', '.join(repr(c) for c in classes.tolist())}")
    return codes


def recorded_classes(names: tuple[str, str], metrics: dict[str, Any] | None = None) -> np.ndarray:
    """The two classes: as fit saw them (0 / 1, booleans, names) where the metrics recorded
    them, else the label `names`."""
    recorded = (metrics or {}).get("dataset", {}).get("classes")
    if isinstance(recorded, list) and [str(c) for c in recorded] == list(names):
        return np.asarray(recorded)
    return np.asarray(list(names))
