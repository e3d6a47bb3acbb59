"""The intent classifier: two linear SVMs (words, letters) summed, a calibrated softmax.

Chosen by cross-validation on training data only (see ``benchmarks/README.md``, section
"Intent engine"). Two views of a message, each with its own linear SVM, one-vs-rest:

* **words**: word 1-2 grams (with start and end marks) catch phrasing, character 2-5 grams
  inside each word (weighted 0.4) catch typos and spelling variants;
* **letters**: character 2-4 grams of the whole message with the spaces and word breaks
  taken out, so a word the tokeniser cut in an odd place ("ไลฟ|สด", "เช็ต") still counts.

Their decision values are added: two SVMs, each fitted on its own view (not one SVM over
both, which cross-validated no better), stored as one weight matrix over both vocabularies.
Class weights are the square root of "balanced" (a class of n_k of N examples over K classes
weighs (N / (K n_k)) ** 0.5): rare intents still count, and big classes are not pushed down
as far as full balancing does; the catch-all ``out_of_scope`` (big because it is broad, not
because it is likely) weighs at least 1. SVM scores are not probabilities, so a softmax
temperature is fitted on out-of-fold scores (the confidence then means what it says).

Each SVM is ``sklearn.svm.LinearSVC`` (liblinear: L2-regularised squared hinge, intercept
regularised with it, one-vs-rest, these class weights) on the SciPy sparse tf-idf matrices
built here; its weights are copied into ``LinearModel``, whose prediction is a few NumPy
lookups (microseconds a message). scikit-learn is imported only when training: loading the
cached engine at start-up does not import it (that alone costs over half a second).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "SETTINGS",
    "FeatureIndex",
    "LinearModel",
    "ModelSettings",
    "SparseRows",
    "features",
    "train",
]

FloatArray = npt.NDArray[np.float32]
#: Stored weights: half precision (about 3 significant digits; the scores are sums of ~100
#: products computed in float32, so rounding moves a score by about 1e-3 of its size).
HalfArray = npt.NDArray[np.float16]
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
    #: LinearSVC's ``tol``: the served model ends within 1e-6 of the optimal objective, the
    #: calibration folds' within 1e-4 (plenty for one temperature, and faster).
    tolerance: float = 1e-3
    calibration_tolerance: float = 1e-2
    #: scikit-learn's rule: dual coordinate descent when features outnumber examples (n-grams
    #: of text always do: 71,000 features for 5,400 phrases), else the primal Newton solver.
    dual: bool | Literal["auto"] = "auto"
    #: 1: the intercept is regularised like a weight (the objective the method was chosen with).
    intercept_scaling: float = 1.0
    max_iter: int = 1000
    #: Folds and liblinear's coordinate order (the same files always give the same model).
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
class SparseRows:
    """The weight matrix (features x classes) without most of its zero cells, in half
    precision.

    Why not the dense matrix: three quarters of its cells are exactly zero (a feature seen in
    no support vector of a class), and the dense float32 matrix was the largest thing in a
    worker's memory (102,000 features x 103 intents = 42 MB). Rows with more than two thirds
    of their cells non-zero stay dense (there a dense row costs no more than its cells would:
    2 bytes a cell against 3 for a cell's class and weight), so scoring the common n-grams is
    still one gather and a product; the other rows keep only their non-zero cells. Weights are
    stored as float16 and summed in float32: on every benchmark set (``nlu_bench.py``) the
    same predictions as float32, and the weights take 7 MB (float32 and the earlier split: 18).
    Plain NumPy: serving never loads SciPy.
    """

    #: For each row, its place in ``dense`` (-1: the row's cells are in the sparse part).
    slots: npt.NDArray[np.int32]
    dense: HalfArray  # (rows kept dense, n_columns)
    indptr: npt.NDArray[np.int64]  # (n_rows + 1,): a sparse row's cells are indptr[r]:indptr[r+1]
    columns: npt.NDArray[np.unsignedinteger[Any]]  # each sparse cell's class (uint8 or uint16)
    values: HalfArray  # each sparse cell's weight
    n_columns: int

    @property
    def n_rows(self) -> int:
        return len(self.slots)

    @property
    def stored_cells(self) -> int:
        """Cells held: the dense rows' in full plus the sparse rows' non-zero ones."""
        return int(self.dense.size + len(self.values))

    @classmethod
    def from_dense(cls, matrix: npt.NDArray[Any]) -> SparseRows:
        """Split a (rows x columns) matrix: rows with more than two thirds of their cells
        non-zero stay dense, the rest keep their non-zero cells."""
        matrix = np.asarray(matrix, dtype=np.float16)  # a weight that rounds to 0 is no cell
        filled = (matrix != 0).sum(axis=1)
        keep_dense = filled > max(1, (2 * matrix.shape[1]) // 3)
        slots = np.full(matrix.shape[0], -1, dtype=np.int32)
        slots[keep_dense] = np.arange(int(keep_dense.sum()), dtype=np.int32)
        rest = np.where(keep_dense[:, None], 0, matrix)
        rows, columns = np.nonzero(rest)
        counts = np.bincount(rows, minlength=matrix.shape[0])
        small = np.uint8 if matrix.shape[1] <= 256 else np.uint16
        return cls(
            slots=slots,
            dense=np.ascontiguousarray(matrix[keep_dense]),
            indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            columns=columns.astype(small),
            values=rest[rows, columns],
            n_columns=int(matrix.shape[1]),
        )

    def check(self) -> None:
        """Raise ValueError unless the arrays describe a matrix (a cache file may be damaged)."""
        ends = self.indptr
        if (
            any(a.ndim != 1 for a in (self.slots, ends, self.columns, self.values))
            or self.columns.dtype.kind != "u"
            or len(ends) != self.n_rows + 1
            or ends[0] != 0
            or ends[-1] != len(self.values)
            or len(self.columns) != len(self.values)
            or bool((np.diff(ends) < 0).any())
            or (len(self.columns) and int(self.columns.max()) >= self.n_columns)
            or self.dense.ndim != 2
            or self.dense.shape[1] != self.n_columns
            or int(self.slots.max(initial=-1)) >= len(self.dense)
        ):
            raise ValueError("weight rows are inconsistent")

    def to_dense(self) -> FloatArray:
        """The full matrix again (tests and tools; serving never needs it)."""
        out = np.zeros((self.n_rows, self.n_columns), dtype=np.float32)
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
        out[rows, self.columns] = self.values
        kept = self.slots >= 0
        out[kept] = self.dense[self.slots[kept]]
        return out

    def combine(self, index: IntArray, coefficients: FloatArray) -> npt.NDArray[np.float64]:
        """Sum over k of coefficients[k] * row index[k]: what ``coefficients @ full[index]``
        gives, from the stored cells only."""
        slots = self.slots[index]
        kept = slots >= 0
        summed: npt.NDArray[np.float64] = (coefficients[kept] @ self.dense[slots[kept]]).astype(
            np.float64
        )
        index, coefficients = index[~kept], coefficients[~kept]
        starts = self.indptr[index]
        lengths = self.indptr[index + 1] - starts
        total = int(lengths.sum())
        if total:
            first = np.cumsum(lengths) - lengths  # where each row's cells begin in the gather
            cells = np.arange(total) + np.repeat(starts - first, lengths)
            summed += np.bincount(
                self.columns[cells],
                weights=self.values[cells] * np.repeat(coefficients, lengths),
                minlength=self.n_columns,
            )
        return summed


class FeatureIndex:
    """Feature name -> row of the weights, in about 3 MB where a dict of the 102,000 names
    took 15 MB of every serving process (``tracemalloc``: 8.4 MB of strings, 6.7 MB of dict),
    and built without ever holding all the names as Python strings (no peak, no heap left
    fragmented by 100,000 freed strings).

    The names are one UTF-8 blob and the offsets where each ends (also how the engine's cache
    file stores them). Lookups go by the names' hashes, sorted once: one binary search (a NumPy
    call) finds every feature of a message. Python's string hash is 64-bit SipHash, salted per
    process, so the table is built in the process that uses it (a pickled index is rebuilt
    from its names). Two known names with one hash make the index keep a dict instead; an
    unknown feature can be taken for a known one only if its hash equals one of ~10**5 out of
    2**64 (about 5e-15 a feature), which would nudge one score, never fail a message.
    """

    __slots__ = ("_blob", "_dict", "_ends", "_hashes", "_rows")

    def __init__(self, blob: bytes, ends: npt.NDArray[np.int64]) -> None:
        self._blob = bytes(blob)
        self._ends = np.asarray(ends, dtype=np.int64)
        count = len(self._ends)
        if count and (self._ends[-1] != len(self._blob) or (np.diff(self._ends) < 0).any()):
            raise ValueError("feature names and their offsets disagree")
        hashes = np.fromiter(map(hash, self), dtype=np.int64, count=count)
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._rows = order.astype(np.int32)
        self._dict: dict[str, int] | None = None
        if count > 1 and bool((self._hashes[1:] == self._hashes[:-1]).any()):
            self._dict = {name: i for i, name in enumerate(self)}
            if len(self._dict) != count:
                raise ValueError("a feature name twice in the vocabulary")

    @classmethod
    def of(cls, names: Sequence[str]) -> FeatureIndex:
        """The index of ``names`` (row i is names[i])."""
        encoded = [n.encode() for n in names]
        return cls(b"".join(encoded), np.cumsum([len(e) for e in encoded], dtype=np.int64))

    def __reduce__(self) -> tuple[Any, ...]:
        # The names, never the hashes: another process salts its string hashes differently
        # (a model trained in a child process comes back pickled).
        return (FeatureIndex, (self._blob, self._ends))

    def to_arrays(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """The names as the cache file keeps them: UTF-8 bytes and where each name ends."""
        return np.frombuffer(self._blob, dtype=np.uint8), self._ends

    def __len__(self) -> int:
        return len(self._ends)

    def __iter__(self) -> Iterator[str]:
        """The names in row order."""
        blob, start = self._blob, 0
        for end in self._ends.tolist():
            yield blob[start:end].decode()
            start = end

    def rows(self, names: Iterable[str], count: int) -> IntArray:
        """The row of each of ``count`` names, -1 for a name the model does not know."""
        if self._dict is not None:
            get = self._dict.get
            return np.fromiter((get(n, -1) for n in names), dtype=np.intp, count=count)
        wanted = np.fromiter(map(hash, names), dtype=np.int64, count=count)
        if not len(self._hashes):
            return np.full(count, -1, dtype=np.intp)
        at = np.searchsorted(self._hashes, wanted)
        at[at == len(self._hashes)] = 0
        found = self._hashes[at] == wanted
        return np.where(found, self._rows[at], -1).astype(np.intp)


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A trained classifier: vocabulary, weighted idf, views, weights, biases, temperature."""

    classes: tuple[str, ...]
    vocab: FeatureIndex
    idf: FloatArray
    weights: SparseRows  # (n_features, n_classes), only the non-zero weights
    bias: FloatArray  # (n_classes,)
    temperature: float
    #: Which view (0: words, 1: letters) each feature belongs to; each is l2-normalised.
    view: npt.NDArray[np.uint8] | None = None
    settings: ModelSettings = SETTINGS
    #: Each class's own confidence floor (``bot.nlu.calibration``); None: one global floor.
    floors: FloatArray | None = None

    def vector(self, feats: Sequence[str]) -> tuple[IntArray, FloatArray]:
        """Indices and sublinear tf-idf values of the known features, l2-normalised per view."""
        counts = Counter(feats)
        index = self.vocab.rows(counts, len(counts))
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
        return (self.weights.combine(index, values) + self.bias).astype(np.float32)

    def probabilities(self, scores: FloatArray) -> FloatArray:
        """Calibrated probabilities from decision values."""
        return _softmax(scores, self.temperature)

    # -- storage ----------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, Any]:
        """Plain arrays for ``numpy.savez`` (no pickle: a cache file can never run code)."""
        names, ends = self.vocab.to_arrays()
        view = self.view if self.view is not None else np.zeros(len(ends), dtype=np.uint8)
        return {
            "classes": np.array(self.classes, dtype=np.str_),
            "vocab_utf8": names,
            "vocab_ends": ends,
            "idf": self.idf,
            "view": view,
            "weight_slots": self.weights.slots,
            "weight_dense": self.weights.dense,
            "weight_rows": self.weights.indptr,
            "weight_classes": self.weights.columns,
            "weight_values": self.weights.values,
            "bias": self.bias,
            "temperature": np.array([self.temperature], dtype=np.float64),
            "floors": self.floors if self.floors is not None else np.zeros(0, np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> LinearModel:
        vocab = FeatureIndex(arrays["vocab_utf8"].tobytes(), arrays["vocab_ends"])
        classes = tuple(str(x) for x in arrays["classes"].tolist())
        weights = SparseRows(
            np.asarray(arrays["weight_slots"], dtype=np.int32),
            np.ascontiguousarray(arrays["weight_dense"], dtype=np.float16),
            np.asarray(arrays["weight_rows"], dtype=np.int64),
            np.asarray(arrays["weight_classes"]),
            np.asarray(arrays["weight_values"], dtype=np.float16),
            len(classes),
        )
        view = np.asarray(arrays["view"], dtype=np.uint8)
        if weights.n_rows != len(vocab) or view.shape[0] != len(vocab):
            raise ValueError("vocabulary and weights disagree")
        weights.check()
        floors = np.asarray(arrays["floors"], dtype=np.float32) if "floors" in arrays else None
        return cls(
            classes=classes,
            vocab=vocab,
            idf=np.asarray(arrays["idf"], dtype=np.float32),
            weights=weights,
            bias=np.asarray(arrays["bias"], dtype=np.float32),
            temperature=float(arrays["temperature"][0]),
            view=view,
            floors=floors if floors is not None and len(floors) else None,
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


# -- the SVMs ---------------------------------------------------------------------------------


def class_weights(
    y: IntArray, n_classes: int, settings: ModelSettings, catch_all: int = -1
) -> dict[int, float]:
    """Each class's weight for ``LinearSVC(class_weight=...)``, the classes ``y`` has.

    (N / (K n_k)) ** power over all K classes of the model (a fold's subset keeps the
    model's K), and the catch-all class (index ``catch_all``) at least
    ``catch_all_min_weight``. Power 1 is scikit-learn's "balanced".
    """
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weight = (len(y) / (n_classes * np.maximum(counts, 1.0))) ** settings.class_weight_power
    if catch_all >= 0:
        weight[catch_all] = max(weight[catch_all], settings.catch_all_min_weight)
    return {int(k): float(weight[k]) for k in np.flatnonzero(counts)}


def _fit(
    x: Any,
    y: IntArray,
    n_classes: int,
    settings: ModelSettings,
    tolerance: float,
    catch_all: int = -1,
) -> npt.NDArray[np.float32]:
    """One view's one-vs-rest ``LinearSVC`` as a (features + 1, classes) matrix, bias last.

    scikit-learn is imported here, not at the top: loading a cached engine never pays for it.
    Two classes give liblinear one decision value d; it is stored as (-d, +d), which is
    what the softmax (and the temperature fitted on the same form) reads.
    """
    from sklearn.svm import LinearSVC

    svm = LinearSVC(
        penalty="l2",
        loss="squared_hinge",
        dual=settings.dual,
        tol=tolerance,
        C=settings.svm_c,
        fit_intercept=True,
        intercept_scaling=settings.intercept_scaling,
        class_weight=class_weights(y, n_classes, settings, catch_all),
        random_state=settings.seed,
        max_iter=settings.max_iter,
    )
    svm.fit(x, y)
    coef = np.asarray(svm.coef_, dtype=np.float64)
    intercept = np.asarray(svm.intercept_, dtype=np.float64).reshape(-1)
    columns = np.asarray(svm.classes_, dtype=np.intp)
    if coef.shape[0] == 1 and len(columns) == 2:
        coef = np.vstack([-coef, coef])
        intercept = np.concatenate([-intercept, intercept])
    out = np.zeros((x.shape[1] + 1, n_classes), np.float32)
    out[:-1, columns] = coef.T
    out[-1, columns] = intercept
    return out


def out_of_fold_scores(
    matrix: _Matrix, y: IntArray, n_classes: int, settings: ModelSettings, catch_all: int = -1
) -> npt.NDArray[np.float32] | None:
    """Decision values of each document from models that did not see it (None: too few).

    The features and their idf come from all documents, the folds are few (stratified,
    shuffled with the settings' seed) and the fits stop early (``calibration_tolerance``):
    close enough for fitting one temperature (two folds give the same temperature as five
    to within a few per cent), and cheap.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    k = min(settings.calibration_folds, int(counts[counts > 0].min()))
    if k < 2 or np.count_nonzero(counts) < 2:
        return None
    views = [v for v in matrix.views if v.shape[1]]
    out = np.zeros((len(y), n_classes), np.float32)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=settings.seed)
    for train_rows, test in folds.split(np.zeros((len(y), 1)), y):
        for view in views:
            w = _fit(
                view[train_rows],
                y[train_rows],
                n_classes,
                settings,
                settings.calibration_tolerance,
                catch_all,
            )
            out[test] += view[test] @ w[:-1] + w[-1]
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
        _fit(view, y, len(classes), settings, settings.tolerance, catch_all)
        if view.shape[1]
        else np.zeros((1, len(classes)), np.float32)  # a view without features adds nothing
        for view in matrix.views
    ]
    from bot.nlu.calibration import class_floors

    temperature = 1.0
    floors = None
    oof = out_of_fold_scores(matrix, y, len(classes), settings, catch_all)
    if oof is not None:
        temperature = fit_temperature(oof, y)
        floors = class_floors(_softmax(oof, temperature), y)
    names = matrix.names[0] + matrix.names[1]
    weights = np.vstack([full[0][:-1], full[1][:-1]]).astype(np.float32)
    bias = (full[0][-1] + full[1][-1]).astype(np.float32)
    view = np.concatenate(
        [np.zeros(len(matrix.names[0]), np.uint8), np.ones(len(matrix.names[1]), np.uint8)]
    )
    return LinearModel(
        classes=classes,
        vocab=FeatureIndex.of(names),
        idf=np.concatenate(matrix.idf).astype(np.float32),
        weights=SparseRows.from_dense(weights),
        bias=bias,
        temperature=temperature,
        view=view,
        settings=settings,
        floors=floors,
    )
