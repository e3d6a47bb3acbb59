"""Who gets which new courses: matching subscribers to courses, then one digest per user.

A subscriber fits a course when they share a topic, the course reaches them
(online, nationwide, or in one of their provinces; a nationwide subscriber
takes any province), and the course's stage is within ``spread`` of theirs
(no stage: any). Pure functions over plain values, so the rules are unit-tested
directly.

Subscriptions cluster (many users share the same topics, provinces and stage), so
matching works on *groups* of identical subscriptions: each group is matched once,
and its users are handed on as whole lists. Only users with something already
delivered, held by the daily cap, or (never, given the table's key) subscribed twice
are looked at one by one. 100,000 subscribers match in a fraction of a second.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from bot.kb.schemas import Course


class Subscriber(NamedTuple):
    """An active subscription of a user who still follows the account."""

    user_id: str
    topics: frozenset[str]
    #: Empty: nationwide.
    provinces: frozenset[str]
    stage: int | None


class Group(NamedTuple):
    """Users whose subscriptions are identical (matched together)."""

    topics: frozenset[str]
    #: Empty: nationwide.
    provinces: frozenset[str]
    stage: int | None
    users: list[str]


_Key = tuple[frozenset[str], frozenset[str], int | None]


def group(subscribers: Iterable[Subscriber]) -> list[Group]:
    """Subscribers gathered by identical (topics, provinces, stage)."""
    users: dict[_Key, list[str]] = defaultdict(list)
    for sub in subscribers:
        users[(sub.topics, sub.provinces, sub.stage)].append(sub.user_id)
    return [Group(*key, found) for key, found in users.items()]


@dataclass(frozen=True)
class Offer:
    """What matching needs of a course."""

    id: str
    topics: frozenset[str]
    #: None: reaches everyone (online or nationwide).
    provinces: frozenset[str] | None
    stage: int

    @classmethod
    def of(cls, course: Course) -> Offer:
        anywhere = (
            course.format == "online"
            or course.places.nationwide
            or not course.places.province_codes
        )
        return cls(
            id=course.id,
            topics=frozenset(course.topics),
            provinces=None if anywhere else frozenset(course.places.province_codes),
            stage=course.stage,
        )


def reaches(offer: Offer, sub: Subscriber | Group) -> bool:
    """The course is available where the subscriber is."""
    return offer.provinces is None or not sub.provinces or bool(offer.provinces & sub.provinces)


def stage_fits(offer: Offer, sub: Subscriber | Group, spread: int) -> bool:
    return sub.stage is None or abs(offer.stage - sub.stage) <= spread


@dataclass
class CourseMatch:
    """Who a course matched, and how (for ``bot notify --dry-run``)."""

    course_id: str
    users: list[str] = field(default_factory=list)
    by_topic: dict[str, int] = field(default_factory=dict)
    local: int = 0
    already: int = 0


@dataclass
class Plan:
    """The outcome of matching: digests to send and users held back by the daily cap."""

    #: Sorted course ids of a digest -> the users who get exactly that digest.
    digests: dict[tuple[str, ...], list[str]]
    matches: dict[str, CourseMatch]
    #: Users who matched something but had their notices for today.
    capped: set[str]

    @property
    def recipients(self) -> int:
        return sum(len(users) for users in self.digests.values())


def plan(
    offers: Iterable[Offer],
    groups: Iterable[Group],
    delivered: set[tuple[str, str]],
    capped_users: set[str],
    spread: int = 1,
) -> Plan:
    """Match every offer to every group; each user's new courses make one digest.

    ``delivered`` holds (user, course) pairs already announced; ``capped_users`` had
    their daily notices already and wait for tomorrow.
    """
    offers = list(offers)
    merged: dict[_Key, list[str]] = {}
    for g in groups:
        key = (g.topics, g.provinces, g.stage)
        if key in merged:
            merged[key].extend(g.users)
        else:
            merged[key] = list(g.users)
    # Users handled one by one: a delivered pair, the daily cap, or listed twice.
    twice = Counter(u for users in merged.values() for u in users) if _repeats(merged) else None
    special = {u for u, _ in delivered} | capped_users
    if twice is not None:
        special |= {u for u, n in twice.items() if n > 1}
    by_topic: dict[str, list[Offer]] = defaultdict(list)
    for offer in offers:
        for topic in sorted(offer.topics):
            by_topic[topic].append(offer)
    matches = {offer.id: CourseMatch(offer.id) for offer in offers}
    digests: dict[tuple[str, ...], list[str]] = defaultdict(list)
    wanted: dict[str, list[str]] = defaultdict(list)
    for (topics, provinces, stage), users in merged.items():
        kind = Group(topics, provinces, stage, users)
        # Offer -> the topic credited for the match (the first shared one, sorted).
        fits: dict[str, str] = {}
        local: set[str] = set()
        for topic in sorted(topics):
            for offer in by_topic.get(topic, ()):
                if offer.id in fits or not (
                    reaches(offer, kind) and stage_fits(offer, kind, spread)
                ):
                    continue
                fits[offer.id] = topic
                if offer.provinces is not None:
                    local.add(offer.id)
        if not fits:
            continue
        if special and not special.isdisjoint(users):
            for user in users:
                for course_id, topic in fits.items():
                    match = matches[course_id]
                    if (user, course_id) in delivered:
                        match.already += 1
                        continue
                    _count(match, [user], topic, course_id in local)
                    wanted[user].append(course_id)
            continue
        for course_id, topic in fits.items():
            _count(matches[course_id], users, topic, course_id in local)
        digests[tuple(sorted(fits))].extend(users)
    capped: set[str] = set()
    for user, course_ids in wanted.items():
        if user in capped_users:
            capped.add(user)
            continue
        digests[tuple(sorted(set(course_ids)))].append(user)
    return Plan(dict(digests), matches, capped)


def _count(match: CourseMatch, users: list[str], topic: str, local: bool) -> None:
    match.users.extend(users)
    match.by_topic[topic] = match.by_topic.get(topic, 0) + len(users)
    if local:
        match.local += len(users)


def _repeats(merged: dict[_Key, list[str]]) -> bool:
    """Is any user in more than one group (or twice in one)?"""
    total = sum(len(users) for users in merged.values())
    return len(set().union(*merged.values())) < total if merged else False
