"""Reading a typed answer by meaning when no phrase is close enough in letters.

"พอใช้ได้ โพสต์ขายเป็น" shares letters with a "basic" phrase ("พอใช้ได้") and a "good" one
("โพสต์ขายของเป็น"), so string similarity cannot choose. What tells the options of a question
apart are the words only some options use ("โพสต์", "ไลฟ์", "เพจ"), while "ใช้", "ได้",
"เป็น" appear under every option and say nothing. So each option is the vocabulary of its
phrases (words, plus in-word character 2-4-grams for spelling variants), each feature weighs
``log(K / df)`` over the question's K options (a feature every option has weighs 0), and a
message goes to the option that explains the largest share of its weighted features, when it
is clearly ahead. Negated messages ("ยังไม่...") only meet negated phrases.

A few lines of counting rather than scikit-learn: the matcher is built in every serving
process at each knowledge load, and scikit-learn alone adds about 75 MB there
(``bot.nlu.engine``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

__all__ = ["MEANING_MARGIN", "MEANING_MIN", "OptionMeaning"]

#: The best option must explain this share of the message's weighted features, and lead the
#: next option by the margin.
MEANING_MIN = 0.35
MEANING_MARGIN = 0.06
#: Weight of in-word character n-grams against whole words.
CHAR_WEIGHT = 0.3


def _features(words: Sequence[str]) -> Counter[str]:
    feats: Counter[str] = Counter("w:" + w for w in words)
    for w in words:
        padded = f" {w} "
        for n in (2, 3, 4):
            for i in range(len(padded) - n + 1):
                feats["c:" + padded[i : i + n]] += 1
    return feats


class OptionMeaning:
    """Each option of one question as the weighted vocabulary of its phrases."""

    def __init__(self, phrases: Sequence[tuple[str, Sequence[str], bool]]) -> None:
        """``phrases``: (option id, words, negated) for every phrase of the question."""
        self.vocab: dict[tuple[str, bool], set[str]] = {}
        for option, words, negated in phrases:
            if words:
                self.vocab.setdefault((option, negated), set()).update(_features(words))
        options = {option for option, _ in self.vocab}
        df: Counter[str] = Counter()
        for option in options:
            seen: set[str] = set()
            for (other, _), feats in self.vocab.items():
                if other == option:
                    seen |= feats
            df.update(seen)
        k = max(len(options), 1)
        self.weight = {
            name: math.log(k / n) * (CHAR_WEIGHT if name.startswith("c:") else 1.0)
            for name, n in df.items()
        }
        self.unknown = math.log(k) if k > 1 else 1.0

    def best(self, words: Sequence[str], negated: bool) -> tuple[str, float, float] | None:
        """The option explaining most of the message, its share and its lead (None: none)."""
        feats = _features(words)
        total = 0.0
        for name, count in feats.items():
            weight = self.weight.get(name)
            if weight is None:  # a word no option has still counts: it is unexplained
                weight = self.unknown * (CHAR_WEIGHT if name.startswith("c:") else 1.0)
            total += weight * count
        if total <= 0:
            return None
        scores: dict[str, float] = {}
        for (option, polarity), vocab in self.vocab.items():
            if polarity != negated:
                continue
            got = sum(self.weight.get(n, 0.0) * c for n, c in feats.items() if n in vocab)
            scores[option] = max(got / total, scores.get(option, 0.0))
        if not scores:
            return None
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        lead = ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)
        return ranked[0][0], ranked[0][1], lead

    def choose(self, words: Sequence[str], negated: bool) -> str | None:
        """The option a message means, when it is clearly ahead."""
        found = self.best(words, negated)
        if found is None:
            return None
        option, score, lead = found
        return option if score >= MEANING_MIN and lead >= MEANING_MARGIN else None
