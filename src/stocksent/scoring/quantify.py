"""Quantification: the share of bullish messages in a set, from the model's probabilities.

Counting labels (CC) or averaging probabilities (PCC) is biased whenever the set's mix of labels
differs from the training data's: a model errs towards the share it learnt at. The adjusted
methods correct for that from how the model scores tagged messages of known label (a
calibration set: the model's validation split, or the user's own market's tags):

    CC    share of p >= 0.5                        Forman (2008)
    PCC   mean p                                   Bella et al. (2010)
    ACC   (CC - fpr) / (tpr - fpr)                 Forman (2008)
    PACC  (PCC - mean p | bearish) / (mean p | bullish - mean p | bearish)     Bella et al. (2010)
    EMQ   the prior under which EM finds the posteriors explain the set, the model's
          posteriors as they are, against the share it was trained at      Saerens et al. (2002)
    EMQ-PLATT   the same, the posteriors first recalibrated on the calibration set (Platt's
          scaling of the logit), against the calibration set's share
    HDY   the mix of the calibration set's two class histograms nearest (Hellinger distance)
          the set's histogram                                                  Gonzalez-Castro et al. (2013)

Every adjusted method assumes the set differs from the calibration set by its share alone;
`misfit` measures how far a set's probabilities are from that.

Every method is a function of weighted probabilities: `values` (B,) with `weights` (..., B), so
that one call estimates a set of raw probabilities (weights 1), a histogram (bin centres and
counts) or a whole batch of bootstrap histograms at once (weights (R, B)).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import numpy as np

from ..errors import StocksentError
from .metrics import sigmoid

EPS = 1e-6
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-10
HDY_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """How the model scores tagged messages: the probabilities of the bearish-tagged and of the
    bullish-tagged ones, each as values and weights, and the share of bullish among the messages
    the model was trained on (EMQ's starting prior)."""

    values: np.ndarray
    negatives: np.ndarray  # (..., B) weights of `values` among the bearish-tagged messages
    positives: np.ndarray  # (..., B) among the bullish-tagged
    trained_prior: float

    @classmethod
    def of(cls, proba: np.ndarray, labels: np.ndarray, trained_prior: float | None = None) -> "Calibration":
        """From raw probabilities and their 0 / 1 labels (each message its own value)."""
        proba, labels = np.asarray(proba, dtype=np.float64), np.asarray(labels)
        check_calibration(int((labels == 0).sum()), int((labels == 1).sum()))
        prior = float(labels.mean()) if trained_prior is None else trained_prior
        return cls(proba, (labels == 0).astype(np.float64), (labels == 1).astype(np.float64), prior)

    @cached_property
    def scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """Platt's scaling fitted on it (platt()), once."""
        return platt(self)

    @property
    def tagged(self) -> tuple[np.ndarray, np.ndarray]:
        """How many bearish and bullish tagged messages it holds (per batch row)."""
        return self.negatives.sum(-1), self.positives.sum(-1)


def check_calibration(negatives: int, positives: int) -> None:
    if not negatives or not positives:
        raise StocksentError(f"a calibration set needs messages of both labels; it has {negatives} bearish and "
                             f"{positives} bullish")


def _mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (weights * values).sum(-1) / np.maximum(weights.sum(-1), EPS)


def cc(values: np.ndarray, weights: np.ndarray, cal: Calibration | None = None) -> np.ndarray:
    return _mean((values >= 0.5).astype(np.float64), weights)


def pcc(values: np.ndarray, weights: np.ndarray, cal: Calibration | None = None) -> np.ndarray:
    return _mean(values, weights)


def acc(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> np.ndarray:
    tpr, fpr = cc(cal.values, cal.positives), cc(cal.values, cal.negatives)
    return _adjusted(cc(values, weights), tpr, fpr)


def pacc(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> np.ndarray:
    tpr, fpr = pcc(cal.values, cal.positives), pcc(cal.values, cal.negatives)
    return _adjusted(pcc(values, weights), tpr, fpr)


def _adjusted(observed: np.ndarray, tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """(observed - fpr) / (tpr - fpr) within [0, 1]; the observed share as it is where the
    calibration cannot tell the labels apart (tpr = fpr)."""
    gap = tpr - fpr
    safe = np.abs(gap) > EPS
    return np.clip(np.where(safe, (observed - fpr) / np.where(safe, gap, 1.0), observed), 0.0, 1.0)


def em_prior(values: np.ndarray, weights: np.ndarray, trained_prior: float | np.ndarray) -> np.ndarray:
    """Saerens et al.'s EM: the prior under which the posteriors `values` (learnt at
    `trained_prior`) explain the set. EM's fixed point is solved for directly, by Newton's
    method kept inside a bracket: a few steps where EM's own iterations can take hundreds.

    With posterior_i(q) = q a_i / (q a_i + (1 - q) b_i), a_i = p_i / t, b_i = (1 - p_i) / (1 - t),
    EM stops where q = mean_i posterior_i(q); divided by q (1 - q) that reads
    sum_i w_i (a_i - b_i) / (b_i + q (a_i - b_i)) = 0, whose left side falls as q grows."""
    p = np.clip(values, EPS, 1 - EPS)
    trained = np.asarray(trained_prior, dtype=np.float64)[..., None]
    b = (1 - p) / (1 - trained)
    d = p / trained - b
    shape = np.broadcast_shapes(weights.shape[:-1], d.shape[:-1])
    low, high = np.full(shape, EPS), np.full(shape, 1 - EPS)
    prior = np.broadcast_to(np.clip(trained[..., 0], EPS, 1 - EPS), shape).copy()
    for _ in range(EM_ITERATIONS):
        ratio = d / (b + prior[..., None] * d)
        value, slope = (weights * ratio).sum(-1), -(weights * ratio ** 2).sum(-1)
        low, high = np.where(value > 0, prior, low), np.where(value > 0, high, prior)
        step = prior - value / np.minimum(slope, -1e-300)
        new = np.where((step > low) & (step < high), step, (low + high) / 2)
        if np.all(np.abs(new - prior) < EM_TOLERANCE):
            return new
        prior = new
    return prior


def platt(cal: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """Platt's scaling fitted on the calibration set: a, b with sigmoid(a logit(p) + b) the
    calibrated probability (weighted logistic regression by Newton's method)."""
    z = _logit(cal.values)
    w = np.concatenate([cal.negatives, cal.positives], -1)
    x, y = np.concatenate([z, z]), np.concatenate([np.zeros_like(z), np.ones_like(z)])
    a, b = np.ones(w.shape[:-1]), np.zeros(w.shape[:-1])
    for _ in range(50):
        q = sigmoid(a[..., None] * x + b[..., None])
        r, s = w * (y - q), w * q * (1 - q) + 1e-9
        ga, gb = (r * x).sum(-1), r.sum(-1)
        haa, hab, hbb = (s * x * x).sum(-1) + 1e-6, (s * x).sum(-1), s.sum(-1) + 1e-6
        det = haa * hbb - hab * hab
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a, b = a + da, b + db
        if np.all(np.abs(da) + np.abs(db) < 1e-10):
            break
    return a, b


def emq_platt(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> np.ndarray:
    posteriors, trained = _platt_posteriors(values, cal)
    return em_prior(posteriors, weights, trained)


def _platt_posteriors(values: np.ndarray, cal: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """The posteriors after Platt's scaling, and the share they are calibrated at."""
    a, b = cal.scaling
    negatives, positives = cal.tagged
    return sigmoid(a[..., None] * _logit(values) + b[..., None]), positives / (negatives + positives)


def emq(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> np.ndarray:
    """EMQ on the model's probabilities as they are, against its training share."""
    return em_prior(values, weights, cal.trained_prior)


def em_bounds(values: np.ndarray, weights: np.ndarray, trained_prior: float, best: float,
              level: float) -> tuple[float, float]:
    """The likelihood-ratio interval of EM's prior `best` (em_prior of one set of posteriors and
    one calibration): the priors whose log-likelihood is within chi2(1, level) / 2 of the best.
    Where a set holds few messages the likelihood is flat and this is wide, where resampling so
    few would not be."""
    p = np.clip(values, EPS, 1 - EPS)
    a, b = p / trained_prior, (1 - p) / (1 - trained_prior)

    def loglik(q: float) -> float:
        return float((weights * np.log(b + q * (a - b))).sum())

    drop = NormalDist().inv_cdf((1 + level) / 2) ** 2 / 2
    top = loglik(best)

    def edge(far: float) -> float:
        near = best
        if top - loglik(far) <= drop:
            return far
        for _ in range(60):
            middle = (near + far) / 2
            near, far = (middle, far) if top - loglik(middle) <= drop else (near, middle)
        return near
    return edge(0.0), edge(1.0)


# For the methods that are EM: the posteriors and share their likelihood is over.
EM_POSTERIORS: dict[str, Callable[[np.ndarray, "Calibration"], tuple[np.ndarray, np.ndarray | float]]] = {
    "emq": lambda values, cal: (values, cal.trained_prior),
    "emq-platt": _platt_posteriors,
}


def hdy(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> np.ndarray:
    """The share whose mix of the two class histograms (HDY_BINS bins of p) is nearest the set's
    in Hellinger distance, searched on a grid of 0.001."""
    grid, coefficient = _mixes(values, weights, cal)
    return grid[np.argmax(coefficient, axis=-1)]


def misfit(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> float:
    """How far a set's probabilities are from every mix of the calibration set's bearish and
    bullish ones: the Hellinger distance to the nearest (HDY's histograms), less what drawing the
    set's messages from that mix would give by chance. Near 0 where the set differs from the
    calibration set by its share alone, which is what the adjusted methods assume; far from 0
    where its messages are unlike any the model was calibrated on. One set: `weights` (B,) are
    message counts (the chance term reads their total as the set's size)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1:
        raise StocksentError("misfit measures one set of messages at a time")
    if not weights.sum() > 0:
        raise StocksentError("misfit has no messages to measure")
    grid, coefficient = _mixes(values, weights, cal)
    best = int(np.argmax(coefficient))
    share, (negatives, positives) = grid[best], cal.tagged
    # The chi-square approximation of the squared Hellinger distance between histograms drawn from
    # the same mix (the set's messages, and the calibration set's of each label), one share fitted;
    # it holds where the bins hold many messages each.
    chance = (HDY_BINS - 2) / 8 * (1 / float(weights.sum()) + share ** 2 / max(float(positives), 1.0)
                                   + (1 - share) ** 2 / max(float(negatives), 1.0))
    return float(np.sqrt(max(1.0 - float(coefficient[best]) - chance, 0.0)))


def _mixes(values: np.ndarray, weights: np.ndarray, cal: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """A grid of shares, and the Bhattacharyya coefficient between the set's histogram and each
    share's mix of the calibration set's two (1 - it is the squared Hellinger distance)."""
    def histogram(v: np.ndarray, w: np.ndarray) -> np.ndarray:
        edges = np.minimum((v * HDY_BINS).astype(np.int64), HDY_BINS - 1)
        sums = np.stack([(w * (edges == k)).sum(-1) for k in range(HDY_BINS)], -1)
        return sums / np.maximum(sums.sum(-1, keepdims=True), EPS)

    test = histogram(values, weights)
    neg, pos = histogram(cal.values, cal.negatives), histogram(cal.values, cal.positives)
    grid = np.linspace(0.0, 1.0, 1001)
    mix = grid[:, None] * pos[..., None, :] + (1 - grid[:, None]) * neg[..., None, :]  # (..., G, K)
    return grid, np.sqrt(mix * test[..., None, :]).sum(-1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


Method = Callable[[np.ndarray, np.ndarray, Calibration], np.ndarray]
METHODS: dict[str, Method] = {"cc": cc, "pcc": pcc, "acc": acc, "pacc": pacc, "emq": emq, "emq-platt": emq_platt,
                              "hdy": hdy}
UNCALIBRATED = ("cc", "pcc")  # the methods that need no calibration set
# Chosen by bench/quantify.py on the stream and the 2020 set: EMQ on the model's posteriors as
# they are reads other markets best from its own validation split; given a market's own tags,
# EMQ after Platt's scaling on them does.
DEFAULT_METHOD, DEFAULT_WITH_TAGS = "emq", "emq-platt"


def default_method(market_tags: bool) -> str:
    return DEFAULT_WITH_TAGS if market_tags else DEFAULT_METHOD


def check_method(name: str) -> Method:
    if name not in METHODS:
        raise StocksentError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]
