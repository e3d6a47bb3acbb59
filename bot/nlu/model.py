"""The intent classifier: two linear SVMs (words, letters) summed, a calibrated softmax.

Chosen by cross-validation on training data only (see ``benchmarks/README.md``, section
"Intent engine"). Two views of a message, each with its own linear SVM, one-vs-rest:

* **words**: word 1-2 grams (with start and end marks) catch phrasing, character 2-5 grams
  inside each word (weighted 0.4) catch typos and spelling variants;
* **letters**: character 2-4 grams of the whole message with the spaces and word breaks
  taken out, so a word the tokeniser cut in an odd place ("ไลฟ|สด", "เช็ต") still counts.

Their decision values are added (an ensemble of two SVMs, stored as one weight matrix over
both vocabularies). Class weights are the square root of "balanced" (a class of n_k of N
examples over K classes weighs (N / (K n_k)) ** 0.5): rare intents still count, and big
classes are not pushed down as far as full balancing does; the catch-all ``out_of_scope``
(big because it is broad, not because it is likely) weighs at least 1. SVM scores are
not probabilities, so a softmax temperature is fitted on out-of-fold scores (the confidence
then means what it says).

Training is NumPy and SciPy's sparse matrices: a primal truncated-Newton solver of the
L2-regularised squared-hinge SVM (liblinear's objective, intercept included in the
regularisation, so the solution is the one ``sklearn.svm.LinearSVC`` finds), all classes at
once. No scikit-learn at start-up (importing it alone took over a second). Prediction is a
few NumPy lookups; one message takes microseconds.
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
IntArray = npt.NDArray[np.intp]

#: Feature name prefixes of the second view (characters of the whole message).
_LETTERS = "s:"


@dataclass(frozen=True)
class ModelSettings:
    """The classifier's settings: one generic set for every data set (no per-data tuning)."""

    char_min: int = 2
    char_max: int = 5
    #: Weight of the in-word character n-grams against the words (many more of them).
    char_weight: float = 0.4
    #: Character n-grams of the whole message, spaces removed (the second SVM's view).
    letters_min: int = 2
    letters_max: int = 4
    svm_c: float = 1.0
    #: Class weight (N / (K n_k)) ** power: 1 is "balanced", 0 is no weighting.
    class_weight_power: float = 0.5
    #: The catch-all class is big because it is broad, not because it is likely: its weight
    #: is never below this (a class of that name only; the public data sets have none).
    catch_all: str = "out_of_scope"
    catch_all_min_weight: float = 1.0
    calibration_folds: int = 2
    #: Newton iterations stop when the gradient has shrunk by this factor.
    tolerance: float = 1e-3
    calibration_tolerance: float = 1e-2
    seed: int = 0


SETTINGS = ModelSettings()


def features(words: Sequence[str], settings: ModelSettings = SETTINGS) -> list[str]:
    """Word unigrams and bigrams, in-word character n-grams, whole-message character n-grams."""
    return word_features(words, settings) + letter_features(words, settings)


def word_features(words: Sequence[str], settings: ModelSettings = SETTINGS) -> list[str]:
    """The first view: word unigrams, bigrams (with start and end marks), in-word n-grams."""
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
            out += ["c:" + padded[i : i + n] for i in range(n_chars - n + 1)]
    return out


def letter_features(words: Sequence[str], settings: ModelSettings = SETTINGS) -> list[str]:
    """The second view: character n-grams of the whole message, word breaks taken out."""
    text = "^" + "".join(words) + "$"
    n_chars = len(text)
    out: list[str] = []
    for n in range(settings.letters_min, min(settings.letters_max, n_chars) + 1):
        out += [_LETTERS + text[i : i + n] for i in range(n_chars - n + 1)]
    return out


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A trained classifier: vocabulary, weighted idf, views, weights, biases, temperature."""

    classes: tuple[str, ...]
    vocab: dict[str, int]
    idf: FloatArray
    weights: FloatArray  # (n_features, n_classes)
    bias: FloatArray  # (n_classes,)
    temperature: float
    #: Which view (0: words, 1: letters) each feature belongs to; each is l2-normalised.
    view: npt.NDArray[np.uint8] | None = None
    settings: ModelSettings = SETTINGS

    def vector(self, feats: Sequence[str]) -> tuple[IntArray, FloatArray]:
        """Indices and sublinear tf-idf values of the known features, l2-normalised per view."""
        counts = Counter(feats)
        get = self.vocab.get
        index = np.array([get(f, -1) for f in counts], dtype=np.intp)
        tf = np.array(list(counts.values()), dtype=np.float32)
        seen = index >= 0
        if not seen.all():
            index, tf = index[seen], tf[seen]
        if not len(index):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        values = (1.0 + np.log(tf)) * self.idf[index]
        if self.view is None:
            norm = float(np.sqrt(np.dot(values, values)))
            return index, (values / norm if norm > 0 else values).astype(np.float32)
        view = self.view[index]
        norms = np.sqrt(np.bincount(view, weights=values * values, minlength=2))
        norms[norms == 0] = 1.0
        return index, (values / norms[view]).astype(np.float32)

    def scores(self, feats: Sequence[str]) -> FloatArray:
        """The summed SVMs' decision value of each class."""
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
        view = self.view if self.view is not None else np.zeros(len(names), dtype=np.uint8)
        return {
            "classes": np.array(self.classes, dtype=np.str_),
            "vocab": np.array(names, dtype=np.str_),
            "idf": self.idf,
            "view": view,
            "weights": self.weights,
            "bias": self.bias,
            "temperature": np.array([self.temperature], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> LinearModel:
        names = [str(x) for x in arrays["vocab"].tolist()]
        weights = np.ascontiguousarray(arrays["weights"], dtype=np.float32)
        view = np.asarray(arrays["view"], dtype=np.uint8)
        if weights.shape[0] != len(names) or view.shape[0] != len(names):
            raise ValueError("vocabulary and weights disagree")
        return cls(
            classes=tuple(str(x) for x in arrays["classes"].tolist()),
            vocab={name: i for i, name in enumerate(names)},
            idf=np.asarray(arrays["idf"], dtype=np.float32),
            weights=weights,
            bias=np.asarray(arrays["bias"], dtype=np.float32),
            temperature=float(arrays["temperature"][0]),
            view=view,
        )


def _softmax(scores: npt.NDArray[Any], temperature: float) -> FloatArray:
    z = np.asarray(scores, dtype=np.float64) * temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out


# -- vectorising ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Matrix:
    """Both views of the training documents as l2-normalised sublinear tf-idf rows."""

    views: tuple[Any, Any]  # scipy.sparse CSR matrices (n_docs x n_features of the view)
    names: tuple[list[str], list[str]]
    idf: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _vectorise(docs: Sequence[Sequence[str]], settings: ModelSettings) -> _Matrix:
    """The two views' tf-idf matrices (smooth idf, sublinear tf, l2 rows), names and idf."""
    import scipy.sparse as sp

    vocabs: tuple[dict[str, int], dict[str, int]] = ({}, {})
    cells: tuple[list[int], list[int]] = ([], [])
    counts: tuple[list[int], list[int]] = ([], [])
    pointers: tuple[list[int], list[int]] = ([0], [0])
    for words in docs:
        for v, found in enumerate(
            (word_features(words, settings), letter_features(words, settings))
        ):
            tally = Counter(found)
            vocab = vocabs[v]
            cells[v].extend([vocab.setdefault(name, len(vocab)) for name in tally])
            counts[v].extend(tally.values())
            pointers[v].append(len(cells[v]))
    n_docs = len(docs)
    views = []
    idfs = []
    for v in (0, 1):
        index = np.asarray(cells[v], dtype=np.int32)
        df = np.bincount(index, minlength=len(vocabs[v])).astype(np.float64)
        idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
        if v == 0:
            names0 = list(vocabs[0])
            idf *= np.array(
                [settings.char_weight if name.startswith("c:") else 1.0 for name in names0]
            )
        values = (1.0 + np.log(np.asarray(counts[v], dtype=np.float64))) * idf[index]
        indptr = np.asarray(pointers[v], dtype=np.int32)
        rows = np.repeat(np.arange(n_docs), np.diff(indptr))
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_docs))
        norms[norms == 0] = 1.0
        values /= norms[rows]
        views.append(
            sp.csr_matrix(
                (values.astype(np.float32), index, indptr), shape=(n_docs, len(vocabs[v]))
            )
        )
        idfs.append(idf)
    return _Matrix(
        views=(views[0], views[1]),
        names=(list(vocabs[0]), list(vocabs[1])),
        idf=(idfs[0], idfs[1]),
    )


# -- the SVM ---------------------------------------------------------------------------------


def _costs(
    y: IntArray, n_classes: int, settings: ModelSettings, catch_all: int = -1
) -> npt.NDArray[np.float32]:
    """Per-example, per-class costs, liblinear's one-vs-rest convention.

    The positive examples of class k cost C * w_k, every negative one C, with
    w_k = (N / (K n_k)) ** power, and the catch-all class (index ``catch_all``) at least
    ``catch_all_min_weight``.
    """
    n = len(y)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weight = (n / (n_classes * np.maximum(counts, 1.0))) ** settings.class_weight_power
    if catch_all >= 0:
        weight[catch_all] = max(weight[catch_all], settings.catch_all_min_weight)
    costs = np.full((n, n_classes), settings.svm_c, np.float32)
    costs[np.arange(n), y] = settings.svm_c * weight[y]
    return costs


def _newton(
    x: Any,
    signs: npt.NDArray[np.float32],
    costs: npt.NDArray[np.float32],
    tolerance: float,
) -> npt.NDArray[np.float32]:
    """min_w 0.5 |w|^2 + sum_i c_i max(0, 1 - y_i w.x_i)^2 for every column at once.

    ``x`` has a last column of ones (the intercept, regularised like liblinear's). A
    truncated Newton method: conjugate gradients on the generalised Hessian, then an exact
    line search along the step (the objective is piecewise quadratic on a line). A column
    stops when its gradient is ``tolerance`` times the gradient at w = 0. Single precision
    throughout (half the memory traffic; the tolerance is far above its rounding).
    """
    xt = x.T.tocsr()
    n_features, n_classes = x.shape[1], signs.shape[1]
    w = np.zeros((n_features, n_classes), np.float32)
    z = x @ w
    scaled = costs * signs

    def gradient(w: npt.NDArray[np.float32], z: npt.NDArray[np.float32]) -> Any:
        margin = 1.0 - signs * z
        loss = np.maximum(margin, 0.0)
        loss *= scaled
        g = xt @ loss
        g *= -2.0
        g += w
        return g, margin > 0.0

    grad, active = gradient(w, z)
    stop = tolerance * np.sqrt(np.einsum("ij,ij->j", grad, grad))
    for _ in range(50):
        norm = np.sqrt(np.einsum("ij,ij->j", grad, grad))
        cols = np.flatnonzero(norm > stop)
        if not len(cols):
            break
        every = len(cols) == n_classes
        g = grad if every else grad[:, cols]
        d = 2.0 * (costs if every else costs[:, cols]) * (active if every else active[:, cols])
        step = np.zeros_like(g)
        r = -g
        p = r.copy()
        rr = np.einsum("ij,ij->j", r, r)
        enough = (0.1 * norm[cols]) ** 2
        for _cg in range(100):
            xp = x @ p
            xp *= d
            hp = xt @ xp
            hp += p
            curvature = np.einsum("ij,ij->j", p, hp)
            alpha = rr / np.maximum(curvature, 1e-30)
            step += alpha * p
            hp *= alpha
            r -= hp
            rr_next = np.einsum("ij,ij->j", r, r)
            if (rr_next <= enough).all():
                break
            p *= rr_next / np.maximum(rr, 1e-30)
            p += r
            rr = rr_next
        # exact line search: minimise the piecewise quadratic f(w + t * step) over t
        xs = x @ step
        wc = w if every else w[:, cols]
        sc = signs if every else signs[:, cols]
        cc = costs if every else costs[:, cols]
        zc = z if every else z[:, cols]
        m0 = 1.0 - sc * zc
        v = sc * xs
        ws = np.einsum("ij,ij->j", wc, step)
        ss = np.einsum("ij,ij->j", step, step)
        t = np.ones(len(cols), np.float32)
        for _ls in range(30):
            mt = m0 - t * v
            on = cc * (mt > 0.0)
            slope = ws + t * ss - 2.0 * np.einsum("ij,ij->j", on, mt * v)
            bend = ss + 2.0 * np.einsum("ij,ij->j", on, v * v)
            t_next = t - slope / bend
            if np.all(np.abs(t_next - t) <= 1e-4 * np.maximum(1.0, np.abs(t))):
                t = t_next
                break
            t = t_next
        if every:
            w += t * step
            z += t * xs
        else:
            w[:, cols] = wc + t * step
            z[:, cols] = zc + t * xs
        grad, active = gradient(w, z)
    return w


def _with_intercept(x: Any) -> Any:
    import scipy.sparse as sp

    return sp.hstack([x, np.ones((x.shape[0], 1), np.float32)], format="csr", dtype=np.float32)


def _fit(
    x: Any,
    y: IntArray,
    n_classes: int,
    settings: ModelSettings,
    tolerance: float,
    catch_all: int = -1,
) -> npt.NDArray[np.float32]:
    """Weights of one view's SVM, the intercept as the last row."""
    signs = -np.ones((len(y), n_classes), np.float32)
    signs[np.arange(len(y)), y] = 1.0
    return _newton(x, signs, _costs(y, n_classes, settings, catch_all), tolerance)


def _folds(y: IntArray, k: int, seed: int) -> list[IntArray]:
    """Stratified folds: each class's examples shuffled, then dealt out in turn."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.intp)
    offset = 0
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        fold_of[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def out_of_fold_scores(
    matrix: _Matrix, y: IntArray, n_classes: int, settings: ModelSettings, catch_all: int = -1
) -> npt.NDArray[np.float32] | None:
    """Decision values of each document from models that did not see it (None: too few).

    The features and their idf come from all documents, the folds are few and the fits
    stop early (``calibration_tolerance``): close enough for fitting one temperature (two
    folds give the same temperature as five to within a few per cent), and cheap.
    """
    counts = np.bincount(y, minlength=n_classes)
    k = min(settings.calibration_folds, int(counts[counts > 0].min()))
    if k < 2 or np.count_nonzero(counts) < 2:
        return None
    views = [_with_intercept(v) for v in matrix.views if v.shape[1]]
    out = np.zeros((len(y), n_classes), np.float32)
    for test in _folds(y, k, settings.seed):
        train_rows = np.setdiff1d(np.arange(len(y)), test)
        for view in views:
            w = _fit(
                view[train_rows],
                y[train_rows],
                n_classes,
                settings,
                settings.calibration_tolerance,
                catch_all,
            )
            out[test] += view[test] @ w
    return out


def fit_temperature(scores: npt.NDArray[Any], target: IntArray) -> float:
    """The softmax temperature that minimises the negative log-likelihood (golden section)."""

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
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError("at least two intents are needed to train")
    position = {c: i for i, c in enumerate(classes)}
    y = np.array([position[label] for label in labels], dtype=np.intp)
    matrix = _vectorise(docs, settings)
    catch_all = position.get(settings.catch_all, -1)
    full = [
        _fit(_with_intercept(view), y, len(classes), settings, settings.tolerance, catch_all)
        if view.shape[1]
        else np.zeros((1, len(classes)), np.float32)  # a view without features adds nothing
        for view in matrix.views
    ]
    temperature = 1.0
    oof = out_of_fold_scores(matrix, y, len(classes), settings, catch_all)
    if oof is not None:
        temperature = fit_temperature(oof, y)
    names = matrix.names[0] + matrix.names[1]
    weights = np.vstack([full[0][:-1], full[1][:-1]]).astype(np.float32)
    bias = (full[0][-1] + full[1][-1]).astype(np.float32)
    view = np.concatenate(
        [np.zeros(len(matrix.names[0]), np.uint8), np.ones(len(matrix.names[1]), np.uint8)]
    )
    return LinearModel(
        classes=classes,
        vocab={name: i for i, name in enumerate(names)},
        idf=np.concatenate(matrix.idf).astype(np.float32),
        weights=np.ascontiguousarray(weights),
        bias=bias,
        temperature=temperature,
        view=view,
        settings=settings,
    )
