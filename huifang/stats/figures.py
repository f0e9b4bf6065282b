"""The figures of a report and the arithmetic on them: sums over a unit's subtree, rates,
rankings. Pure: the counts come from `stats.queries`, which does the SQL.

Rules kept here:
- a satisfaction rate is (satisfied + basically satisfied) / graded answers, the measure the
  reference deployment reports; an answer that is unclear or missing is counted as answered
  but not graded;
- a rate with nothing to divide is `None` (shown as "—"), never 0 % or 100 %;
- a unit's figures are the sum of its own and every unit below it (the `path` prefix).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from huifang.domain.enums import ComplaintCategory
from huifang.stats.periods import Period

#: the three dimensions the reference deployment measures, in report order
DIMENSIONS = ("attitude", "arrival_time", "handling")
CATEGORIES = tuple(c.value for c in ComplaintCategory)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Grades:
    satisfied: int = 0
    basically_satisfied: int = 0
    unsatisfied: int = 0

    @property
    def graded(self) -> int:
        return self.satisfied + self.basically_satisfied + self.unsatisfied

    @property
    def rate(self) -> float | None:
        return rate(self.satisfied + self.basically_satisfied, self.graded)

    def __add__(self, other: Grades) -> Grades:
        return Grades(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> Grades:
        """From `{outcome: count}`; outcomes that are not grades (unclear, opt_out) are ignored."""
        return cls(**{f.name: counts.get(f.name, 0) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Figures:
    #: incidents handled in the period
    incidents: int = 0
    #: contacts of those incidents that were reached out to (SMS sent or called)
    surveyed: int = 0
    #: overall answers about those incidents, graded or not (whenever they were given)
    answered: int = 0
    overall: Grades = Grades()
    attitude: Grades = Grades()
    arrival_time: Grades = Grades()
    handling: Grades = Grades()
    #: answers to the second callback (二次回访) after a rectification
    second_callback: Grades = Grades()
    #: complaint categories of the escalations about those incidents
    categories: Mapping[str, int] = field(default_factory=dict)
    #: supervision tickets issued in the period, and what became of them
    tickets_issued: int = 0
    tickets_rectified: int = 0
    tickets_on_time: int = 0
    tickets_overdue: int = 0
    #: closed after a satisfied second callback (the only way a ticket closes)
    tickets_closed: int = 0
    #: reopened at least once by an unsatisfied second callback
    tickets_reopened: int = 0

    @property
    def answer_rate(self) -> float | None:
        return rate(self.answered, self.surveyed)

    @property
    def rectification_rate(self) -> float | None:
        return rate(self.tickets_rectified, self.tickets_issued)

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.tickets_on_time, self.tickets_issued)

    def dimension(self, name: str) -> Grades:
        grades: Grades = getattr(self, name)
        return grades

    def as_dict(self) -> dict[str, Any]:
        """Counts and rates as plain JSON values (rates as fractions, `None` when undefined)."""
        grades = ("overall", *DIMENSIONS, "second_callback")
        return {
            "incidents": self.incidents,
            "surveyed": self.surveyed,
            "answered": self.answered,
            "answer_rate": self.answer_rate,
            **{name: _grades_dict(self.dimension(name)) for name in grades},
            "categories": {name: self.categories.get(name, 0) for name in CATEGORIES},
            "tickets": {
                "issued": self.tickets_issued,
                "rectified": self.tickets_rectified,
                "on_time": self.tickets_on_time,
                "overdue": self.tickets_overdue,
                "closed_by_second_callback": self.tickets_closed,
                "reopened": self.tickets_reopened,
                "rectification_rate": self.rectification_rate,
                "on_time_rate": self.on_time_rate,
            },
        }

    def __add__(self, other: Figures) -> Figures:
        summed = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "categories"
        }
        categories = dict(self.categories)
        for name, count in other.categories.items():
            categories[name] = categories.get(name, 0) + count
        return Figures(categories=categories, **summed)


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    code: str
    name: str
    level: str
    path: str
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class UnitFigures:
    unit: UnitRef
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        """The unit and its figures as plain JSON values (a ranking's or a report's row)."""
        unit = {"id": self.unit.id, "code": self.unit.code, "name": self.unit.name,
                "level": self.unit.level}  # fmt: skip
        return {"unit": unit, **self.figures.as_dict()}


@dataclass(frozen=True, slots=True)
class TrendPoint:
    label: str
    answered: int
    overall: Grades


@dataclass(frozen=True, slots=True)
class Comparison:
    """A period beside the one before it (环比) and the same one a year earlier (同比)."""

    current: Figures
    previous: Figures
    year_ago: Figures

    @property
    def month_on_month(self) -> float | None:
        return _change(self.current.overall.rate, self.previous.overall.rate)

    @property
    def year_on_year(self) -> float | None:
        return _change(self.current.overall.rate, self.year_ago.overall.rate)

    def as_dict(self, period: Period) -> dict[str, Any]:
        """`period`'s figures beside the two compared periods, as plain JSON values: what
        `huifang stats summary`, `GET /api/v1/stats/summary` and the demo's summary print."""
        return {
            "period": period.label(),
            "figures": self.current.as_dict(),
            "previous": {"period": period.previous().label(), **self.previous.as_dict()},
            "year_ago": {"period": period.year_ago().label(), **self.year_ago.as_dict()},
            "month_on_month": self.month_on_month,
            "year_on_year": self.year_on_year,
        }


def _change(now: float | None, then: float | None) -> float | None:
    """Change of a rate in percentage points' fraction (0.02 = +2 points)."""
    if now is None or then is None:
        return None
    return now - then


def _grades_dict(grades: Grades) -> dict[str, Any]:
    return {
        "satisfied": grades.satisfied,
        "basically_satisfied": grades.basically_satisfied,
        "unsatisfied": grades.unsatisfied,
        "rate": grades.rate,
    }


def total(figures: Iterable[Figures]) -> Figures:
    result = Figures()
    for item in figures:
        result = result + item
    return result


def roll_up(units: Sequence[UnitRef], own: Mapping[int, Figures]) -> list[UnitFigures]:
    """Every unit with the sum of its subtree's own figures, in tree (path) order."""
    ordered = sorted(units, key=lambda u: u.path)
    return [
        UnitFigures(
            u, total(own[v.id] for v in ordered if v.path.startswith(u.path) and v.id in own)
        )
        for u in ordered
    ]


def subtree_total(
    unit: UnitRef | None, units: Sequence[UnitRef], own: Mapping[int, Figures]
) -> Figures:
    """The figures of `unit`'s subtree; of everything when `unit` is None."""
    if unit is None:
        return total(own.values())
    return total(own[v.id] for v in units if v.path.startswith(unit.path) and v.id in own)


def rank(rows: Iterable[UnitFigures], *, level: str) -> list[UnitFigures]:
    """Units of one level, best overall satisfaction rate first; units with no graded answer
    last; ties broken by more graded answers, then by code."""

    def key(row: UnitFigures) -> tuple[int, float, int, str]:
        grades = row.figures.overall
        return (grades.rate is None, -(grades.rate or 0.0), -grades.graded, row.unit.code)

    return sorted((r for r in rows if r.unit.level == level), key=key)
