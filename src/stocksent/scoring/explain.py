"""Explanations by occlusion: which tokens moved a message's score, each left out in turn."""
from __future__ import annotations

import numpy as np

from ..text.preprocess import tokenize
from ..text.vocab import UNKNOWN
from .metrics import sigmoid
from .predictor import Predictor


def explain(predictor: Predictor, text: str, top: int = 5, in_order: bool = False) -> list[tuple[str, float]]:
    """The `top` tokens that moved this message's score most: (token, effect) pairs, largest
    |effect| first, or in the message's order with `in_order`; effect = probability with the
    token - probability without it. Words the model never saw are read as one unknown word,
    but shown as written."""
    if not isinstance(text, str):
        raise TypeError(f"explain takes one string, not {type(text).__name__}")
    prep = predictor.config.preprocess
    tokens = tokenize(text, prep.keep_emoji)[: prep.max_tokens]
    if not tokens:
        return []
    variants = [_ids(predictor, tokens)] + [_ids(predictor, tokens[:i] + tokens[i + 1:]) for i in range(len(tokens))]
    lengths = np.fromiter(map(len, variants), dtype=np.int64, count=len(variants))
    # Every variant is read as the message it came from (a ticker prior, say, is the message's).
    prob = sigmoid(predictor.score_ids(np.concatenate(variants), lengths, [text] * len(variants)))
    effects = prob[0] - prob[1:]
    order = np.argsort(-np.abs(effects), kind="stable")[:max(top, 0)]
    if in_order:
        order = np.sort(order)
    return [(tokens[i], float(effects[i])) for i in order]


def _ids(predictor: Predictor, tokens: list[str]) -> np.ndarray:
    return np.asarray(predictor.vocab.encode(tokens) or [UNKNOWN], dtype=np.int64)
