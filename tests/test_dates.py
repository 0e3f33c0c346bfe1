"""pipeline.io.dates: every date form of inputs.md ("departments/") to the exact day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.io.dates import (
    Precision,
    excel_serial_to_date,
    month_end,
    parse_date,
    parse_date_precise,
    parse_dates,
    parse_year_month,
    parse_year_month_end,
    parse_year_months,
)

D = dt.date(2018, 3, 5)
M = dt.date(2018, 3, 1)


@pytest.mark.parametrize(
    "value, expected, precision",
    [
        # the forms named in inputs.md
        ("2018-03-05", D, Precision.DAY),
        ("2018/3/5", D, Precision.DAY),
        ("20180305", D, Precision.DAY),
        ("2018年3月5日", D, Precision.DAY),
        ("2018年3月", M, Precision.MONTH),
        (43164, D, Precision.DAY),  # an Excel date read as its serial number
        (dt.datetime(2018, 3, 5, 0, 0), D, Precision.DAY),  # calamine, date-time cell
        (dt.date(2018, 3, 5), D, Precision.DAY),  # calamine, date cell
        # the other forms of the brief
        ("2018.3.5", D, Precision.DAY),
        ("201803", M, Precision.MONTH),
        (43164.0, D, Precision.DAY),
        (43164.75, D, Precision.DAY),  # a time of day is dropped
        ("43164", D, Precision.DAY),
        # mess: spaces, full-width digits and separators, times, 号, zero padding
        ("  2018-03-05\u3000", D, Precision.DAY),
        ("２０１８－０３－０５", D, Precision.DAY),
        ("２０１８年３月５日", D, Precision.DAY),
        ("2018 年 3 月 5 日", D, Precision.DAY),
        ("2018年03月05号", D, Precision.DAY),
        ("2018-03-05 00:00:00", D, Precision.DAY),
        ("2018/3/5 0:00", D, Precision.DAY),
        ("2018-03-05T08:30:00", D, Precision.DAY),
        ("2018-03", M, Precision.MONTH),
        ("2018/3", M, Precision.MONTH),
        ("2018.03", M, Precision.MONTH),
        (20180305, D, Precision.DAY),  # yyyymmdd typed into a number cell
        (20180305.0, D, Precision.DAY),
        (201803, M, Precision.MONTH),
        (pd.Timestamp("2018-03-05 13:00"), D, Precision.DAY),
        (np.datetime64("2018-03-05"), D, Precision.DAY),
        (np.int64(43164), D, Precision.DAY),
        (Decimal("43164"), D, Precision.DAY),
    ],
)
def test_every_form_parses_to_the_exact_date(value, expected, precision):
    parsed = parse_date_precise(value)
    assert parsed is not None
    assert parsed.date == expected
    assert parsed.precision == precision
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None, "", "   ", "\u3000", float("nan"), pd.NA, pd.NaT, np.nan, True, False,
        "2018-02-30", "2018-13-01", "20181301", "201813", "2018年13月", "2018年2月30日",
        "abc", "2018", 2018, "18-3-5", "3/5/2018", "2018-03-05x", "二〇一八年三月五日",
        0, -1, 60, 1.5, float("inf"), float("-inf"), 10**20, "1" * 40,
        "18001231", "21000101", dt.date(1800, 1, 1), dt.time(12, 0), dt.timedelta(days=3),
        "110101199003071234",  # an ID-like number in a date column is not a date
        [2018, 3, 5],
    ],
)
def test_unparseable_is_none(value):
    assert parse_date(value) is None
    assert parse_date_precise(value) is None


def test_excel_1900_system():
    assert excel_serial_to_date(43164) == D
    assert excel_serial_to_date(43101) == dt.date(2018, 1, 1)
    assert excel_serial_to_date(43465) == dt.date(2018, 12, 31)
    assert excel_serial_to_date(36526) == dt.date(2000, 1, 1)
    # 2018 as a number is a year someone typed, not 1905-07-10
    assert excel_serial_to_date(2018) is None


def test_vectorized_parse_dates_keeps_index_and_gives_dates_or_none():
    s = pd.Series(
        ["2018-03-05", 43164, None, "garbage", "2018年3月", dt.datetime(2019, 4, 30), "2018-03-05"],
        index=[10, 11, 12, 13, 14, 15, 16],
        dtype=object,
        name="成立日期",
    )
    out = parse_dates(s)
    assert list(out.index) == list(s.index)
    assert out.name == "成立日期"
    assert out.dtype == object
    assert out.tolist() == [D, D, None, None, M, dt.date(2019, 4, 30), D]


def test_parse_dates_on_a_pandas_string_column():
    s = pd.Series(["20180305", None, "2018/3/5"])  # pandas 3 infers the str dtype
    assert parse_dates(s).tolist() == [D, None, D]


@pytest.mark.parametrize(
    "value, first, last",
    [
        ("201801", dt.date(2018, 1, 1), dt.date(2018, 1, 31)),
        ("2018-01", dt.date(2018, 1, 1), dt.date(2018, 1, 31)),
        ("2018年1月", dt.date(2018, 1, 1), dt.date(2018, 1, 31)),
        ("2018/02", dt.date(2018, 2, 1), dt.date(2018, 2, 28)),
        (201602, dt.date(2016, 2, 1), dt.date(2016, 2, 29)),
        ("2018-12-15", dt.date(2018, 12, 1), dt.date(2018, 12, 31)),
        (dt.datetime(2018, 6, 1), dt.date(2018, 6, 1), dt.date(2018, 6, 30)),
        (43164, dt.date(2018, 3, 1), dt.date(2018, 3, 31)),
        (" ２０１８０１ ", dt.date(2018, 1, 1), dt.date(2018, 1, 31)),
    ],
)
def test_year_month_first_and_last_day(value, first, last):
    assert parse_year_month(value) == first
    assert parse_year_month_end(value) == last


def test_year_month_unparseable_and_vectorized():
    assert parse_year_month("201813") is None
    assert parse_year_month_end(None) is None
    assert parse_year_months(pd.Series(["201801", "x", 201912], dtype=object)).tolist() == [
        dt.date(2018, 1, 1), None, dt.date(2019, 12, 1),
    ]


def test_month_end():
    assert month_end(dt.date(2019, 2, 10)) == dt.date(2019, 2, 28)
    assert month_end(dt.date(2020, 2, 1)) == dt.date(2020, 2, 29)
    assert month_end(dt.date(2018, 12, 1)) == dt.date(2018, 12, 31)


@given(
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789０１２３４５６７８９年月日号-/.: \u3000T"),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.datetimes(),
        st.dates(),
        st.none(),
        st.booleans(),
    )
)
def test_parse_date_never_raises(value):
    parsed = parse_date_precise(value)
    assert parsed is None or (isinstance(parsed.date, dt.date) and 1900 <= parsed.date.year <= 2099)
    assert parse_date(value) == (parsed.date if parsed else None)
    result = parse_year_month_end(value)
    assert result is None or isinstance(result, dt.date)
