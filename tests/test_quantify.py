import numpy as np
import pytest

from stocksent.errors import StocksentError
from stocksent.scoring.quantify import METHODS, Calibration, check_method, em_prior, misfit

RNG = np.random.default_rng(7)


def _scores(n: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a classifier that separates two labels fairly well, for n messages of
    which `share` are positive: the true posteriors at a prior of one half."""
    labels = (RNG.random(n) < share).astype(np.int64)
    scores = RNG.normal(np.where(labels == 1, 1.0, -1.0), 1.2)
    return 1 / (1 + np.exp(-2 * scores / 1.2 ** 2)), labels


CALIBRATION = Calibration.of(*_scores(4000, 0.5), trained_prior=0.5)


@pytest.fixture(autouse=True)
def _the_same_draws_in_any_order():
    """Each test draws the same numbers whichever tests ran before it (the suite runs shuffled)."""
    global RNG
    RNG = np.random.default_rng(8)


def _estimate(method: str, proba: np.ndarray) -> float:
    return float(METHODS[method](proba, np.ones_like(proba), CALIBRATION))


def test_the_methods_agree_with_quapy_on_the_same_probabilities():
    pytest.importorskip("quapy")
    from quapy.method.aggregative import ACC, CC, EMQ, PACC, PCC
    from sklearn.linear_model import LogisticRegression

    proba, _ = _scores(500, 0.8)
    cal_p, cal_y = CALIBRATION.values, CALIBRATION.positives.astype(int)

    fitted = LogisticRegression().fit([[0.0], [1.0]], [0, 1])  # QuaPy asks for one; the probabilities are given
    two = lambda p: np.stack([1 - p, p], axis=1)  # noqa: E731
    crisp = lambda p: (p >= 0.5).astype(int)  # noqa: E731
    theirs = {}
    for name, kind, soft in (("cc", CC, False), ("pcc", PCC, True), ("acc", ACC, False), ("pacc", PACC, True)):
        method = kind(fitted, fit_classifier=False) if name in ("cc", "pcc") else \
            kind(fitted, fit_classifier=False, solver="exact-cc")
        method.aggregation_fit(two(cal_p) if soft else crisp(cal_p), cal_y)
        theirs[name] = method.aggregate(two(proba) if soft else crisp(proba))[1]
    theirs["emq"] = EMQ.EM(np.array([0.5, 0.5]), two(proba), epsilon=1e-12)[0][1]
    for name, value in theirs.items():
        assert _estimate(name, proba) == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize("method", ["acc", "pacc", "emq", "emq-platt", "hdy"])
def test_the_adjusted_methods_find_a_share_far_from_the_calibration_set_s(method):
    proba, labels = _scores(3000, 0.85)
    assert abs(_estimate(method, proba) - labels.mean()) < 0.04
    assert abs(_estimate("pcc", proba) - labels.mean()) > 0.1  # what they correct


def test_a_batch_of_weights_estimates_each_row_as_alone():
    proba, _ = _scores(300, 0.3)
    weights = RNG.integers(0, 3, size=(4, len(proba))).astype(np.float64)
    for name, method in METHODS.items():
        rows = method(proba, weights, CALIBRATION)
        alone = [float(method(proba, w, CALIBRATION)) for w in weights]
        np.testing.assert_allclose(rows, alone, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("n", [300, 3000])
@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_a_set_that_differs_from_the_calibration_set_by_its_share_alone_fits_it(n, share):
    fits = [misfit(proba, np.ones(n), CALIBRATION) for proba in (_scores(n, share)[0] for _ in range(20))]
    assert np.median(fits) < 0.03 and max(fits) < 0.1  # what drawing n messages gives by chance is taken off


def test_a_set_of_messages_unlike_the_calibration_set_s_does_not_fit_it():
    unsure = 1 / (1 + np.exp(-RNG.normal(0.0, 0.3, 2000)))  # read as neither: no mix of the two labels
    assert misfit(unsure, np.ones(len(unsure)), CALIBRATION) > 0.3


def test_em_holds_a_set_scored_at_the_trained_share_where_it_is():
    assert float(em_prior(np.array([0.3, 0.7]), np.ones(2), 0.5)) == pytest.approx(0.5)
    assert float(em_prior(np.array([0.9, 0.9]), np.ones(2), 0.5)) > 0.99  # two sure bullish: all bullish


def test_a_calibration_set_of_one_label_and_an_unknown_method_are_refused():
    with pytest.raises(StocksentError, match="needs messages of both labels; it has 0 bearish and 2 bullish"):
        Calibration.of(np.array([0.2, 0.9]), np.array([1, 1]))
    with pytest.raises(StocksentError, match="unknown method 'magic'"):
        check_method("magic")


def _em_step(proba, weights, trained, prior):
    """One step of Saerens et al.'s EM: 0 at its fixed point."""
    up = prior / trained * proba
    posterior = up / (up + (1 - prior) / (1 - trained) * (1 - proba))
    return (weights * posterior).sum() / weights.sum() - prior


def test_em_s_prior_is_where_its_step_stands_still():
    proba, _ = _scores(60, 0.8)
    weights = RNG.integers(1, 4, len(proba)).astype(np.float64)
    prior = float(em_prior(proba, weights, 0.6))
    assert abs(_em_step(np.clip(proba, 1e-6, 1 - 1e-6), weights, 0.6, prior)) < 1e-9
