"""Named dialogue steps, declared once per conversation (aiogram's ``StatesGroup`` shape).

A handler module declares its conversation's steps as a class::

    class CourseSteps(StepGroup, prefix="courses"):
        topic = Step()          # the step's name is "courses.topic"

and passes the class to its ``Router(..., steps=CourseSteps)``. ``Router.step`` and
``Turn.goto`` take only ``Step`` values, so a step name is never a string typed twice, and the
dispatcher refuses to start when a declared step has no handler: a ``goto`` can never lead a
user into a step that nothing answers. A ``Step`` is a ``str`` (the name stored in the dialogue
state), so it compares equal to the stored step.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Step(str):
    """One step's name. ``Step()`` in a ``StepGroup`` body is filled in with ``prefix.attr``."""

    __slots__ = ()


class StepGroup:
    """The steps of one conversation; subclass with ``prefix=`` and ``Step()`` attributes."""

    prefix: ClassVar[str] = ""
    _steps: ClassVar[dict[str, Step]] = {}

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.prefix = prefix
        cls._steps = {}
        for attr, value in list(vars(cls).items()):
            if isinstance(value, Step):
                named = Step(f"{prefix}.{attr}" if prefix else attr)
                setattr(cls, attr, named)
                cls._steps[attr] = named

    @classmethod
    def steps(cls) -> tuple[Step, ...]:
        """Every step of the group, in declaration order."""
        return tuple(cls._steps.values())

    @classmethod
    def get(cls, attr: str) -> Step:
        """The step declared as ``attr`` (KeyError for an undeclared one)."""
        return cls._steps[attr]

    @classmethod
    def attr_of(cls, name: str | None) -> str | None:
        """The attribute name of a stored step name of this group, or None."""
        for attr, step in cls._steps.items():
            if step == name:
                return attr
        return None
