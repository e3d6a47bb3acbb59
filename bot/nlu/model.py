"""The intent classifier: word and character n-grams, a linear SVM, a calibrated softmax.

Chosen by measurement (see ``benchmarks/README.md``, section "Intent engine"): word 1-2
grams catch phrasing, character 2-5 grams inside words catch typos and spelling variants;
a linear SVM (one-vs-rest, balanced class weights) beats logistic regression, naive Bayes,
nearest-example fuzzy matching and blends of them on both public data sets and on our own
intents. SVM scores are not probabilities, so a temperature for the softmax is fitted on
out-of-fold scores (the confidence then means what it says).

Training uses scikit-learn; prediction is a few NumPy lookups (no scikit-learn at run time,
so a cached engine loads without importing it and one message takes microseconds).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SETTINGS", "LinearModel", "ModelSettings", "features", "train"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ModelSettings:
    """The classifier's settings: one generic set for every data set (no per-data tuning)."""

    char_min: int = 2
    char_max: int = 5
    #: Weight of the character n-grams against the words (many more of them per message).
    char_weight: float = 0.4
    svm_c: float = 1.0
    calibration_folds: int = 5
    seed: int = 0


SETTINGS = ModelSettings()


def features(words: Sequence[str], settings: ModelSettings = SETTINGS) -> list[str]:
    """Word unigrams, bigrams (with start and end marks) and character n-grams of each word."""
    out = ["w:" + w for w in words]
    previous = "^"
    for w in words:
        out.append("b:" + previous + " " + w)
        previous = w
    out.append("b:" + previous + " $")
    lo, hi = settings.char_min, settings.char_max
    for w in words:
        padded = " " + w + " "
        n_chars = len(padded)
        for n in range(lo, min(hi, n_chars) + 1):
            for i in range(n_chars - n + 1):
                out.append("c:" + padded[i : i + n])
    return out


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A trained classifier: vocabulary, weighted idf, weights, biases and a temperature."""

    classes: tuple[str, ...]
    vocab: dict[str, int]
    idf: FloatArray
    weights: FloatArray  # (n_features, n_classes)
    bias: FloatArray  # (n_classes,)
    temperature: float
    settings: ModelSettings = SETTINGS

    def vector(self, feats: Sequence[str]) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """Indices and l2-normalised sublinear tf-idf values of the known features."""
        vocab = self.vocab
        counts = Counter(vocab[f] for f in feats if f in vocab)
        if not counts:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        index = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (1.0 + np.log(tf)) * self.idf[index]
        norm = float(np.sqrt(np.dot(values, values)))
        return index, (values / norm if norm > 0 else values).astype(np.float32)

    def scores(self, feats: Sequence[str]) -> FloatArray:
        """The SVM's decision value of each class."""
        index, values = self.vector(feats)
        if not len(index):
            return self.bias.copy()
        return (values @ self.weights[index] + self.bias).astype(np.float32)

    def probabilities(self, scores: FloatArray) -> FloatArray:
        """Calibrated probabilities from decision values."""
        return _softmax(scores, self.temperature)

    # -- storage ----------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, Any]:
        """Plain arrays for ``numpy.savez`` (no pickle: a cache file can never run code)."""
        names = sorted(self.vocab, key=self.vocab.__getitem__)
        return {
            "classes": np.array(self.classes, dtype=np.str_),
            "vocab": np.array(names, dtype=np.str_),
            "idf": self.idf,
            "weights": self.weights,
            "bias": self.bias,
            "temperature": np.array([self.temperature], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> LinearModel:
        names = [str(x) for x in arrays["vocab"].tolist()]
        weights = np.ascontiguousarray(arrays["weights"], dtype=np.float32)
        if weights.shape[0] != len(names):
            raise ValueError("vocabulary and weights disagree")
        return cls(
            classes=tuple(str(x) for x in arrays["classes"].tolist()),
            vocab={name: i for i, name in enumerate(names)},
            idf=np.asarray(arrays["idf"], dtype=np.float32),
            weights=weights,
            bias=np.asarray(arrays["bias"], dtype=np.float32),
            temperature=float(arrays["temperature"][0]),
        )


def _softmax(scores: npt.NDArray[Any], temperature: float) -> FloatArray:
    z = np.asarray(scores, dtype=np.float64) * temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out


def _vectorise(
    docs: Sequence[Sequence[str]], settings: ModelSettings
) -> tuple[Any, list[str], FloatArray]:
    """The l2-normalised tf-idf matrix, feature names and weighted idf of the documents."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vectoriser = TfidfVectorizer(
        analyzer=lambda words: features(words, settings),
        sublinear_tf=True,
        norm=None,
        dtype=np.float32,
    )
    matrix = vectoriser.fit_transform(docs)
    names: list[str] = vectoriser.get_feature_names_out().tolist()
    scale = np.array(
        [settings.char_weight if name.startswith("c:") else 1.0 for name in names],
        dtype=np.float32,
    )
    idf = (vectoriser.idf_ * scale).astype(np.float32)
    return normalize(matrix.multiply(scale).tocsr()), names, idf


def _svm(
    matrix: Any, labels: Sequence[str], settings: ModelSettings
) -> tuple[tuple[str, ...], FloatArray, FloatArray]:
    """Classes, weights (n_features, n_classes) and biases of a one-vs-rest linear SVM."""
    from sklearn.svm import LinearSVC

    classes = sorted(set(labels))
    svm = LinearSVC(C=settings.svm_c, class_weight="balanced", random_state=settings.seed)
    svm.fit(matrix, list(labels))
    coef = np.asarray(svm.coef_, dtype=np.float32)
    bias = np.asarray(svm.intercept_, dtype=np.float32)
    if len(classes) == 2:  # a binary SVM has one weight vector, for the second class
        coef = np.vstack([-coef, coef])
        bias = np.concatenate([-bias, bias])
    order = [list(svm.classes_).index(c) for c in classes]
    return tuple(classes), np.ascontiguousarray(coef[order].T), bias[order]


def out_of_fold_scores(
    matrix: Any, labels: Sequence[str], folds: int, seed: int, settings: ModelSettings = SETTINGS
) -> tuple[FloatArray, tuple[str, ...]] | None:
    """Decision values of each document from an SVM that did not see it (None if too few).

    The features and their idf come from all documents: close enough for fitting one
    temperature, and five times cheaper than vectorising every fold again.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = Counter(labels)
    classes = tuple(sorted(counts))
    k = min(folds, min(counts.values()))
    if k < 2 or len(classes) < 2:
        return None
    y = np.array(labels)
    out = np.full((len(labels), len(classes)), -10.0, dtype=np.float32)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(labels)), y):
        fold_classes, weights, bias = _svm(matrix[train_idx], list(y[train_idx]), settings)
        cols = [classes.index(c) for c in fold_classes]
        out[np.ix_(test_idx, cols)] = matrix[test_idx] @ weights + bias
    return out, classes


def fit_temperature(scores: FloatArray, classes: Sequence[str], labels: Sequence[str]) -> float:
    """The softmax temperature that minimises the negative log-likelihood (golden section)."""
    target = np.array([list(classes).index(y) for y in labels])

    def nll(log_t: float) -> float:
        p = _softmax(scores, math.exp(log_t)).astype(np.float64)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(target)), target], 1e-12, 1.0))))

    lo, hi = math.log(0.1), math.log(100.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return round(math.exp((lo + hi) / 2), 4)


def train(
    docs: Sequence[Sequence[str]], labels: Sequence[str], settings: ModelSettings = SETTINGS
) -> LinearModel:
    """Train on word lists and labels; calibrate the confidence on out-of-fold scores."""
    if len(set(labels)) < 2:
        raise ValueError("at least two intents are needed to train")
    matrix, names, idf = _vectorise(docs, settings)
    classes, weights, bias = _svm(matrix, labels, settings)
    temperature = 1.0
    oof = out_of_fold_scores(matrix, labels, settings.calibration_folds, settings.seed, settings)
    if oof is not None:
        temperature = fit_temperature(oof[0], oof[1], labels)
    return LinearModel(
        classes=classes,
        vocab={name: i for i, name in enumerate(names)},
        idf=idf,
        weights=weights,
        bias=bias,
        temperature=temperature,
        settings=settings,
    )
