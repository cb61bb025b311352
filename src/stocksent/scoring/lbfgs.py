"""L-BFGS for a smooth convex function without bounds (Nocedal & Wright, Numerical Optimization,
algorithms 7.4 and 7.5, with a backtracking line search): the n-gram part's solver.

    minimise(value_and_gradient, x0, iterations, memory) -> x

scipy's L-BFGS-B carries the machinery of its bounds, which the part does not have; over the
part's many weights it costs more per iteration than the function itself. Here an iteration is
the two-loop recursion, about four passes over the weights per remembered step, and the line
search's evaluations (bench/ngram_solver.py times the two on the part's loss).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

Function = Callable[[np.ndarray], tuple[float, np.ndarray]]  # x -> (value, gradient)
ARMIJO = 1e-4  # the share of the slope a step must realise to be taken
HALVINGS = 20  # of a step that realises too little, before the search gives up
# A pair whose curvature is this small against |y|^2 is rounding, not curvature: left out, as L-BFGS-B does.
CURVATURE = float(np.finfo(np.float64).eps)


def minimise(function: Function, x0: np.ndarray, iterations: int, memory: int = 20) -> np.ndarray:
    """x after `iterations` steps from `x0` (fewer once no direction goes down or no step along it
    lowers the value), each along the direction the last `memory` steps' curvature gives."""
    x = np.array(x0, dtype=np.float64)
    value, gradient = function(x)
    pairs: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)  # (s, y, 1 / s.y)
    for _ in range(iterations):
        direction = -_inverse_hessian_times(gradient, pairs)
        slope = float(gradient @ direction)
        if not slope < 0:  # at the optimum: no direction goes down
            break
        found = _backtrack(function, x, value, direction, slope)
        if found is None:
            break
        step_x, value, step_gradient = found
        s, y = step_x - x, step_gradient - gradient
        curvature = float(s @ y)
        if curvature > CURVATURE * float(y @ y):
            pairs.append((s, y, 1.0 / curvature))
        x, gradient = step_x, step_gradient
    return x


def _inverse_hessian_times(gradient: np.ndarray, pairs: deque) -> np.ndarray:
    """The two-loop recursion: the gradient times the inverse Hessian the pairs estimate, starting
    from the newest pair's scale (or, with none yet, a step of length one)."""
    q = gradient.copy()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * float(s @ q)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q *= float(s @ y) / float(y @ y)
    else:
        q /= max(float(np.linalg.norm(gradient)), 1e-12)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        q += (alpha - rho * float(y @ q)) * s
    return q


def _backtrack(function: Function, x: np.ndarray, value: float, direction: np.ndarray,
               slope: float) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The first of steps 1, 1/2, 1/4, ... along `direction` that lowers the value by ARMIJO of
    what the slope promises: (x, value, gradient) there; None when none does."""
    step = 1.0
    for _ in range(HALVINGS):
        moved = x + step * direction
        moved_value, moved_gradient = function(moved)
        if moved_value <= value + ARMIJO * step * slope:
            return moved, moved_value, moved_gradient
        step /= 2
    return None
