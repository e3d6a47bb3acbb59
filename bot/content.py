"""Reply texts from ``knowledge/replies.yaml``: every sentence the bot says.

Handlers refer to replies by key (``<capability>.<moment>``) and pass named
placeholders; the Thai wording lives only in the file operators edit. A key
may hold one text or a list of variants (one is picked at random, so the bot
does not sound like a machine). Missing keys or placeholders are errors that
name the file and key, never a silent English fallback.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ContentError(ValueError):
    """A knowledge file is unusable; the message names the file, line and field."""


@dataclass(frozen=True)
class Replies:
    """An immutable snapshot of the reply texts."""

    texts: dict[str, tuple[str, ...]]
    source: str = "knowledge/replies.yaml"

    def __contains__(self, key: str) -> bool:
        return key in self.texts

    def text(self, key: str, rng: random.Random | None = None, **params: Any) -> str:
        """The reply for ``key`` with its placeholders filled."""
        try:
            variants = self.texts[key]
        except KeyError:
            raise ContentError(f"{self.source}: {key}: no such reply key") from None
        template = (rng or random).choice(variants) if len(variants) > 1 else variants[0]
        try:
            return template.format_map(params)
        except KeyError as exc:
            raise ContentError(
                f"{self.source}: {key}: placeholder {{{exc.args[0]}}} was not supplied"
            ) from None

    def placeholders(self, key: str) -> set[str]:
        """Names used in ``{...}`` by any variant of ``key`` (for validation)."""
        names: set[str] = set()
        for variant in self.texts.get(key, ()):
            names |= {f for _, f, _, _ in string.Formatter().parse(variant) if f}
        return names


def _flatten(prefix: str, node: Any, out: dict[str, tuple[str, ...]], source: str) -> None:
    if isinstance(node, str):
        out[prefix] = (node.strip(),)
    elif isinstance(node, list) and node and all(isinstance(v, str) for v in node):
        out[prefix] = tuple(v.strip() for v in node)
    elif isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, source)
    else:
        raise ContentError(f"{source}: {prefix}: expected a text, a list of texts or a group")


def load_replies(path: Path) -> Replies:
    """Read and check the replies file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ContentError(
            f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(data, dict):
        raise ContentError(f"{path}:1: expected groups of reply keys")
    texts: dict[str, tuple[str, ...]] = {}
    _flatten("", data, texts, str(path))
    return Replies(texts=texts, source=str(path))
