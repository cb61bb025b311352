"""The n-gram part's solver: where it ends on functions whose minimum is known."""
from __future__ import annotations

import numpy as np

from stocksent.scoring.lbfgs import minimise


def _quadratic(seed: int = 0, n: int = 40) -> tuple:
    """x -> (x'Ax / 2 - b'x, Ax - b), A well conditioned, and its minimum A^-1 b."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(np.linspace(1.0, 20.0, n)) @ q.T
    b = rng.normal(size=n)
    return (lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b)), np.linalg.solve(a, b)


def test_it_reaches_a_quadratic_s_minimum():
    function, expected = _quadratic()
    np.testing.assert_allclose(minimise(function, np.zeros(len(expected)), 100), expected, atol=1e-6)


def test_it_matches_scipy_on_a_logistic_regression():
    from scipy import optimize, special

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8))
    y = (x @ rng.normal(size=8) + rng.normal(size=300) > 0).astype(float)

    def function(w):
        z = x @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + w @ w / 2), x.T @ (special.expit(z) - y) + w

    expected = optimize.minimize(function, np.zeros(8), jac=True, method="L-BFGS-B", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(minimise(function, np.zeros(8), 100), expected, atol=1e-5)


def test_fewer_iterations_end_further_from_the_minimum():
    function, expected = _quadratic(seed=2)
    values = [function(minimise(function, np.zeros(len(expected)), n))[0] for n in (1, 3, 100)]
    assert values[0] > values[1] > values[2]


def test_at_the_minimum_or_with_a_gradient_that_leads_nowhere_it_stays_where_it_started():
    def bowl(x):
        return 0.5 * float(x @ x), x.copy()

    np.testing.assert_array_equal(minimise(bowl, np.zeros(5), 10), np.zeros(5))
    function, expected = _quadratic(seed=3)

    def wrong(x):  # its gradient points uphill: no step along it lowers the value
        value, gradient = function(x)
        return value, -gradient

    start = np.ones(len(expected))
    np.testing.assert_array_equal(minimise(wrong, start, 10), start)
