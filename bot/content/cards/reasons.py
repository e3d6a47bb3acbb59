"""Why an export programme does not fit yet, or what to check first, in plain Thai.

The pre-screen (:func:`bot.kb.queries.prescreen`) gives reasons as codes with parameters;
the wording lives in ``knowledge/replies/export.yaml`` by code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.content.cards.flex import LINE_MAX, WARN, text
from bot.content.replies import Replies
from bot.kb.loader import Knowledge
from bot.kb.queries import Reason
from bot.line.messages import fit

__all__ = ["reason_parts", "reason_text"]

#: Reasons one card lists (certain ones first); the rest wait for the application.
_REASONS_MAX = 6


def _agency_label(kb: Knowledge, code: str) -> str:
    """Who runs it, for a reason such as "member of ส.อ.ท. / หอการค้าไทย"."""
    agency = kb.agencies.get(code)
    if agency is None:
        return code
    return agency.short_th or agency.name.th


def reason_text(reason: Reason, kb: Knowledge, replies: Replies) -> str:
    """A pre-screen reason in plain Thai (wording in ``replies/export.yaml`` by code).

    An uncertain reason (the fact was never asked) reads as "please make sure you ...",
    a certain one as "this programme needs ...".
    """
    p = reason.params
    code = reason.code
    if code == "readiness_low":
        return replies.text(
            "export.reason.readiness_low", required=p.get("required", ""), stage=p.get("stage", "")
        )
    if code == "not_juristic_person":
        if reason.certain:
            return replies.text("export.reason.not_juristic_person")
        return replies.text("export.confirm.not_juristic_person")
    if code == "no_dbd_registration":
        if reason.certain:
            return replies.text("export.reason.no_dbd_registration")
        return replies.text("export.confirm.no_dbd_registration")
    if code == "export_above_max":
        return replies.text("export.reason.export_above_max", max_thb=p.get("max_thb", ""))
    if code == "export_below_min":
        if reason.certain:
            return replies.text("export.reason.export_below_min", min_thb=p.get("min_thb", ""))
        return replies.text("export.confirm.export_below_min", min_thb=p.get("min_thb", ""))
    if code == "membership_required":
        codes = [c.strip() for c in p.get("codes", "").split("/") if c.strip()]
        names = [_agency_label(kb, c) for c in codes]
        if len(names) > 1:
            return replies.text("export.confirm.membership_any", names=" / ".join(names))
        single = kb.agencies.get(codes[0]) if codes else None
        return replies.text(
            "export.confirm.membership_required", names=single.name.th if single else "".join(codes)
        )
    return replies.text("export.reason.other")


def reason_parts(
    reasons: Sequence[Reason], kb: Knowledge, replies: Replies
) -> list[dict[str, Any]]:
    """A card's reasons: what does not fit yet (certain), then what to check (uncertain)."""
    parts: list[dict[str, Any]] = []
    shown = list(reasons)[:_REASONS_MAX]
    for certain in (True, False):
        group = [r for r in shown if r.certain is certain]
        if not group:
            continue
        title = replies.text("cards.reasons_title" if certain else "cards.reasons_check_title")
        parts.append(text(title, size="xs", weight="bold", color=WARN, margin="md"))
        for reason in group:
            item = replies.text("cards.reason_item", text=reason_text(reason, kb, replies))
            parts.append(text(fit(item, LINE_MAX), size="xs", color=WARN))
    return parts
