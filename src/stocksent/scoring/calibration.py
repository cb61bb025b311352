"""The calibration set a model carries: how it scores tagged messages it was not trained on (its
validation split, or a market's own tags), which the adjusted quantification methods need
(quantify.py). A part after the network (parts.py) that leaves the logits as they are.

Saved in model.safetensors under PREFIX: the messages' probabilities, their 0 / 1 labels, and the
share of positives among the messages the model was trained on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from ..config import Config
from ..errors import StocksentError
from .quantify import Calibration, check_calibration

PREFIX = "calibration."


class CalibrationSet:
    """Probabilities and 0 / 1 labels of tagged messages, and the training data's positive share."""

    prefix: ClassVar[str] = PREFIX

    def __init__(self, proba: np.ndarray, labels: np.ndarray, trained_prior: float):
        # float32 as saved: a model estimates the same before and after a save.
        self.proba = np.asarray(proba, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.uint8)
        self.trained_prior = float(np.float32(trained_prior))
        if len(self.proba) != len(self.labels) or not 0.0 < self.trained_prior < 1.0:
            raise StocksentError("a calibration set needs one label per probability and a training share in (0, 1)")
        check_calibration(int((self.labels == 0).sum()), int((self.labels == 1).sum()))

    def calibration(self) -> Calibration:
        return Calibration.of(self.proba.astype(np.float64), self.labels, self.trained_prior)

    def adjust(self, logits: np.ndarray, flat: np.ndarray, lengths: np.ndarray,
               texts: Sequence[str]) -> np.ndarray:
        return logits

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{PREFIX}proba": torch.from_numpy(self.proba.copy()),
                f"{PREFIX}labels": torch.from_numpy(self.labels.copy()),
                f"{PREFIX}trained_prior": torch.tensor([self.trained_prior], dtype=torch.float32)}

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], config: Config,
                source: str) -> tuple["CalibrationSet | None", Config]:
        if not tensors:
            return None, config
        try:
            proba, labels = tensors[f"{PREFIX}proba"].numpy(), tensors[f"{PREFIX}labels"].numpy()
            prior = float(tensors[f"{PREFIX}trained_prior"].reshape(-1)[0])
        except (KeyError, IndexError):
            raise StocksentError(f"{source}: its calibration set is incomplete") from None
        if proba.ndim != 1 or labels.dtype != np.uint8 or not np.isin(labels, (0, 1)).all() \
                or not np.isfinite(proba).all() or (proba < 0).any() or (proba > 1).any():
            raise StocksentError(f"{source}: its calibration set is damaged")
        try:
            return cls(proba, labels, prior), config
        except StocksentError as exc:
            raise StocksentError(f"{source}: its calibration set is damaged ({exc})") from None
