"""The exceptions a user sees: each a readable, single-line reason."""
from __future__ import annotations


class StocksentError(ValueError):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""


class UnknownLabels(StocksentError):
    """Label values in a data file that are not the two label names read."""

    def __init__(self, message: str, values: list[str]):
        super().__init__(message)
        self.values = values


def check_range(name: str, value: int, low: int, high: int) -> None:
    """A StocksentError naming `name` when value is outside [low, high]."""
    if not low <= value <= high:
        raise StocksentError(f"{name} must be between {low:,} and {high:,}")


def not_fitted(what: str) -> Exception:
    """scikit-learn's NotFittedError when scikit-learn is installed (so that its tools recognise
    it), else an error of the same two bases (ValueError, AttributeError)."""
    message = f"this SentimentClassifier is not fitted yet: call fit(texts, labels) or load a saved model before {what}"
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        NotFittedError = type("NotFittedError", (ValueError, AttributeError), {})
    return NotFittedError(message)
