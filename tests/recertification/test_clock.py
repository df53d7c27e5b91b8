"""The recertification clock counts months of days in the portal's time zone."""

from __future__ import annotations

import datetime

import pytest

from recertification.selectors import lapses_on, months_later
from tests.recertification.conftest import at

D = datetime.date


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (D(2026, 3, 15), 12, D(2027, 3, 15)),
        (D(2026, 1, 31), 1, D(2026, 2, 28)),  # a shorter month ends on its last day
        (D(2028, 2, 29), 12, D(2029, 2, 28)),
        (D(2026, 11, 30), 3, D(2027, 2, 28)),
        (D(2026, 12, 31), 1, D(2027, 1, 31)),
        (D(2027, 3, 15), -12, D(2026, 3, 15)),
        (D(2026, 3, 31), -1, D(2026, 2, 28)),
    ],
)
def test_months_later_keeps_the_day_or_takes_the_months_last(
    day: datetime.date, months: int, expected: datetime.date
) -> None:
    assert months_later(day, months) == expected


def test_a_grant_lapses_months_after_its_approval_or_its_kommunes_last_confirmation() -> None:
    approved = at(D(2026, 3, 15), hour=9)
    # Just before midnight UTC is the next day in Oslo: the day is the portal's.
    late = datetime.datetime(2026, 3, 15, 23, 30, tzinfo=datetime.UTC)

    assert lapses_on(approved, None, months=12) == D(2027, 3, 15)
    assert lapses_on(late, None, months=12) == D(2027, 3, 16)
    confirmed = at(D(2026, 9, 1), hour=14)
    assert lapses_on(approved, confirmed, months=12) == D(2027, 9, 1)
    earlier = at(D(2026, 1, 1), hour=14)
    assert lapses_on(approved, earlier, months=12) == D(2027, 3, 15)  # approved after it
