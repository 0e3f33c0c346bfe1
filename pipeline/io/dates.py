"""Dates as departments send them (inputs.md, "departments/"): text in several forms, Excel
serial numbers, or the date objects calamine returns for date-formatted cells.

Accepted, with surrounding spaces and full-width digits tolerated:

=====================  ==========================  =========
form                   example                     precision
=====================  ==========================  =========
ISO and separators     2018-03-05, 2018/3/5,       day
                       2018.3.5, 2018-03-05 0:00
8 digits               20180305                    day
Chinese                2018年3月5日 (or 5号)        day
Chinese year-month     2018年3月                   month
6 digits               201803                      month
year-month             2018-03, 2018/3, 2018.3     month
Excel serial number    43164 (1900 date system)    day
date / datetime        calamine, pandas, Python    day
=====================  ==========================  =========

A month is represented by its first day; :func:`parse_date_precise` says which precision the
value carried, and :func:`month_end` gives the last day of the month (for an end month such as
人社 缴费终止年月). Nothing here raises: an unparseable value is ``None``.

Plausibility: years 1900–2099 only, and an Excel serial only between 1920-01-01 and
2099-12-31 (serials 7306–73415), so that a year typed as a number (2018) or an ID-like number
is never read as a 1905 or 2452 date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import pandas as pd

MIN_YEAR, MAX_YEAR = 1900, 2099
# Excel's 1900 date system: serial 1 is 1900-01-01 and Excel counts a 1900-02-29 that never
# existed (serial 60), so from serial 61 on the day is 1899-12-30 + serial.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
MIN_SERIAL = (dt.date(1920, 1, 1) - _EXCEL_EPOCH).days  # 7306
MAX_SERIAL = (dt.date(MAX_YEAR, 12, 31) - _EXCEL_EPOCH).days  # 73415


class Precision(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class ParsedDate:
    date: dt.date  # for a MONTH value, the first day of the month
    precision: Precision


_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_TIME = r"(?:[T ]\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.\d+)?)?)?"
_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_YM = re.compile(r"(\d{4})[-/.](\d{1,2})")
_CN_YMD = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})[日号]?")
_CN_YM = re.compile(r"(\d{4})年(\d{1,2})月?")


def _ymd(year: int, month: int, day: int) -> dt.date | None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _day(year: str | int, month: str | int, day: str | int) -> ParsedDate | None:
    d = _ymd(int(year), int(month), int(day))
    return ParsedDate(d, Precision.DAY) if d else None


def _month(year: str | int, month: str | int) -> ParsedDate | None:
    d = _ymd(int(year), int(month), 1)
    return ParsedDate(d, Precision.MONTH) if d else None


def excel_serial_to_date(serial: float) -> dt.date | None:
    """The day of an Excel (1900 system) serial number; the time of day is dropped."""
    if not math.isfinite(serial):
        return None
    whole = math.floor(serial)
    if not MIN_SERIAL <= whole <= MAX_SERIAL:
        return None
    return _EXCEL_EPOCH + dt.timedelta(days=whole)


def _digits(text: str) -> ParsedDate | None:
    if len(text) == 8:
        return _day(text[:4], text[4:6], text[6:])
    if len(text) == 6:
        return _month(text[:4], text[4:])
    if len(text) == 5:
        d = excel_serial_to_date(int(text))
        return ParsedDate(d, Precision.DAY) if d else None
    return None


def _number(value: float | int | Decimal) -> ParsedDate | None:
    number = float(value)
    if not math.isfinite(number):
        return None
    if number.is_integer() and 10_000_000 <= number < 100_000_000:  # 20180305 typed as a number
        return _digits(str(int(number)))
    if number.is_integer() and 100_000 <= number < 1_000_000:  # 201803
        return _digits(str(int(number)))
    d = excel_serial_to_date(number)
    return ParsedDate(d, Precision.DAY) if d else None


def _text(value: str) -> ParsedDate | None:
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()
    if not text:
        return None
    compact = text.replace(" ", "")
    if compact.isdigit():
        return _digits(compact)
    if re.fullmatch(r"\d{5}\.\d+", compact):  # a serial with a time of day, as text
        d = excel_serial_to_date(float(compact))
        return ParsedDate(d, Precision.DAY) if d else None
    if m := _CN_YMD.fullmatch(compact):
        return _day(*m.groups())
    if m := _CN_YM.fullmatch(compact):
        return _month(*m.groups())
    if m := _YMD.fullmatch(text):
        return _day(*m.groups())
    if m := _YM.fullmatch(compact):
        return _month(*m.groups())
    return None


def parse_date_precise(value: object) -> ParsedDate | None:
    """A date and the precision the value carried; ``None`` when it is not a date."""
    try:
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
            if value is pd.NaT:
                return None
            d = value.date()
            return ParsedDate(d, Precision.DAY) if MIN_YEAR <= d.year <= MAX_YEAR else None
        if isinstance(value, dt.date):
            return ParsedDate(value, Precision.DAY) if MIN_YEAR <= value.year <= MAX_YEAR else None
        if isinstance(value, (int, float, Decimal)):
            return _number(value)
        if isinstance(value, str):
            return _text(value)
        if pd.isna(value):  # NaT, numpy NaN, pd.NA
            return None
        if hasattr(value, "item"):  # numpy scalars
            return parse_date_precise(value.item())
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        return None
    return None


def parse_date(value: object) -> dt.date | None:
    """The date ``value`` stands for (first day for a year-month), or ``None``; never raises."""
    parsed = parse_date_precise(value)
    return parsed.date if parsed else None


def parse_year_month(value: object) -> dt.date | None:
    """A year-month (``201801``, ``2018-01``, ``2018年1月``, or any full date) as its first day."""
    d = parse_date(value)
    return d.replace(day=1) if d else None


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def parse_year_month_end(value: object) -> dt.date | None:
    """An end month (人社 缴费终止年月) as the last day of that month."""
    d = parse_year_month(value)
    return month_end(d) if d else None


def _map_distinct(series: pd.Series, fn) -> pd.Series:
    cache: dict[tuple[type, object], object] = {}
    out: list[object] = []
    for raw in series.tolist():
        try:
            key = (type(raw), raw)
            if key not in cache:
                cache[key] = fn(raw)
            out.append(cache[key])
        except TypeError:  # unhashable
            out.append(fn(raw))
    return pd.Series(out, index=series.index, dtype=object, name=series.name)


def parse_dates(series: pd.Series) -> pd.Series:
    """:func:`parse_date` over a column (once per distinct value): ``datetime.date`` or ``None``."""
    return _map_distinct(series, parse_date)


def parse_year_months(series: pd.Series) -> pd.Series:
    """:func:`parse_year_month` over a column: first days of months or ``None``."""
    return _map_distinct(series, parse_year_month)


def date_precisions(series: pd.Series) -> pd.Series:
    """``"day"``, ``"month"`` or ``None`` per value: which precision each cell carried."""
    return _map_distinct(series, lambda v: (p.precision.value if (p := parse_date_precise(v)) else None))
