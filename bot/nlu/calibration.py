"""Each answer's own confidence floor, fitted on out-of-fold predictions.

One global floor fails in both directions at once: a guide whose phrasings are close to its
neighbours' needs a higher bar than a greeting, and an edit that adds a hundred examples shifts
every confidence (the Botpress and Rasa complaints in ``shared/GUIDANCE-RESEARCH.md`` §3.2).
So each class gets the lowest confidence at which the messages the model gave it, *without
having seen them* (out-of-fold), were right at least ``TARGET_PRECISION`` of the time. Classes
with few such predictions lean on the default; the result is clipped to a sane range. The
floors are refitted with the model, so an edit re-calibrates them instead of shifting them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_FLOOR", "FLOOR_MAX", "FLOOR_MIN", "TARGET_PRECISION", "class_floors"]

TARGET_PRECISION = 0.9
DEFAULT_FLOOR = 0.5
FLOOR_MIN = 0.3
FLOOR_MAX = 0.8
#: Pseudo-count of the default: a class with few out-of-fold predictions keeps close to it.
PRIOR_WEIGHT = 4.0


def class_floors(
    probabilities: npt.NDArray[Any], target: npt.NDArray[np.intp]
) -> npt.NDArray[np.float32]:
    """The confidence floor of every class (a row of ``probabilities`` per training example)."""
    n_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    floors = np.full(n_classes, DEFAULT_FLOOR, np.float32)
    for c in range(n_classes):
        rows = np.flatnonzero(predicted == c)
        if not len(rows):
            continue
        order = rows[np.argsort(-confidence[rows], kind="stable")]
        right = (target[order] == c).astype(np.float64)
        precision = np.cumsum(right) / np.arange(1, len(order) + 1)
        good = np.flatnonzero(precision >= TARGET_PRECISION)
        fitted = float(confidence[order[good[-1]]]) if len(good) else FLOOR_MAX
        n = float(len(order))
        blended = (n * fitted + PRIOR_WEIGHT * DEFAULT_FLOOR) / (n + PRIOR_WEIGHT)
        floors[c] = min(FLOOR_MAX, max(FLOOR_MIN, blended))
    return floors
