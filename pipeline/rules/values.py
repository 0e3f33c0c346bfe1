"""Normalizing the cell values village staff type (inputs.md, "What real village files look like").

Each normalizer maps one raw value to ``(clean value, problem reason or "")``; the column-level
helpers apply it once per distinct value, so a 50k-row column costs a dictionary lookup a row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pandas as pd

from pipeline.schema import MULTI_SEPARATORS, NO, NO_VARIANTS, YES, YES_VARIANTS, Col

_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_MULTI_SPLIT = re.compile("[" + re.escape(MULTI_SEPARATORS) + "]+")
_YES = {unicodedata.normalize("NFKC", v).upper() for v in YES_VARIANTS}
_NO = {unicodedata.normalize("NFKC", v).upper() for v in NO_VARIANTS}
_TICKS = {"√", "✓", "✔"}

# Frequent variants of code values that mean the same thing.
CODE_ALIASES = {
    "本人": "户主", "妻": "配偶", "妻子": "配偶", "丈夫": "配偶", "夫": "配偶", "儿子": "之子", "子": "之子",
    "女儿": "之女", "女": "之女", "儿媳": "之儿媳", "女婿": "之女婿", "孙子": "之孙子", "孙女": "之孙女",
    "外孙子": "之外孙子", "外孙女": "之外孙女", "父亲": "之父", "母亲": "之母", "男性": "男", "女性": "女",
    "汉": "汉族", "满": "满族", "朝鲜": "朝鲜族", "回": "回族", "蒙古": "蒙古族", "锡伯": "锡伯族",
    "A级": "A", "B级": "B", "C级": "C", "D级": "D",
    "已脱贫": "已脱贫(享受政策)",
}


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and not _SPACES.sub("", value)


def clean_text(value: object, keep_inner_space: bool = False) -> str | None:
    """Strip ordinary and full-width spaces and line breaks; None for an empty cell."""
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    if keep_inner_space:
        return _SPACES.sub(" ", text).strip() or None
    return _SPACES.sub("", text) or None


def normalize_code(value: object, codes: tuple[str, ...]) -> tuple[str | None, str]:
    text = clean_text(value)
    if text is None:
        return None, ""
    text = unicodedata.normalize("NFKC", text)
    for candidate in (text, text.upper(), CODE_ALIASES.get(text), CODE_ALIASES.get(text.upper())):
        if candidate in codes:
            return candidate, ""
    return None, "不在代码表内"


def normalize_multi(value: object, codes: tuple[str, ...]) -> tuple[str | None, str]:
    text = clean_text(value, keep_inner_space=True)
    if text is None:
        return None, ""
    parts = [p for p in _MULTI_SPLIT.split(unicodedata.normalize("NFKC", text)) if p]
    if not parts:  # only separators typed (",", "、、"): something was written, and it is no code
        return None, "不在代码表内"
    out: list[str] = []
    for part in parts:
        code, reason = normalize_code(part, codes)
        if reason:
            return None, "不在代码表内"
        if code and code not in out:
            out.append(code)
    return ("、".join(out) or None), ""


def normalize_yesno(value: object, blank_means_no: bool = False) -> tuple[str | None, str]:
    if is_blank(value):
        return (NO if blank_means_no else None), ""
    if isinstance(value, bool):
        return (YES if value else NO), ""
    if isinstance(value, (int, float)):
        value = str(int(value)) if float(value).is_integer() else str(value)
    key = unicodedata.normalize("NFKC", _SPACES.sub("", str(value))).upper()
    if key in _YES:
        return YES, ""
    if key in _NO:
        return NO, ""
    return None, "不是“是/否”"


def blank_means_no(values: pd.Series) -> bool:
    """A column filled as √/empty: ticks and no explicit "no" anywhere."""
    distinct = {_SPACES.sub("", str(v)) for v in values.dropna().unique() if not is_blank(v)}
    return bool(distinct & _TICKS) and not any(
        unicodedata.normalize("NFKC", v).upper() in _NO for v in distinct
    )


CENT = Decimal("0.01")
# No amount (yuan) or count of a household comes near this; a larger cell is an ID or a phone
# number typed into the wrong column, or a typo — and would overflow the warehouse's integers.
MAX_DIGITS = 12  # |value| < 10**12


def to_cents(amount: Decimal) -> int:
    return int((amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())


def normalize_amount(value: object) -> tuple[int | None, str]:
    """An amount in yuan as integer cents (exact). Empty means 0."""
    if is_blank(value):
        return 0, ""
    if isinstance(value, bool):
        return None, "不是数字"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return None, "不是数字"
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = unicodedata.normalize("NFKC", str(value))
        text = _SPACES.sub("", text).replace(",", "").replace("元", "").replace("¥", "").replace("￥", "")
        if text in ("", "-", "/", "无"):
            return 0, ""
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return None, "不是数字"
        if not amount.is_finite():
            return None, "不是数字"
    if amount and amount.adjusted() >= MAX_DIGITS:  # (no arithmetic: abs() of 1E999999999 overflows)
        return None, "不是数字（数值过大）"
    if amount < 0:
        return to_cents(amount), "金额为负数"
    return to_cents(amount), ""


def normalize_int(value: object) -> tuple[int | None, str]:
    if is_blank(value):
        return None, ""
    if isinstance(value, bool):
        return None, "不是整数"
    if isinstance(value, (int, float)):
        if not abs(value) < 10**MAX_DIGITS:  # also inf
            return None, "不是整数"
        return (int(value), "") if float(value).is_integer() else (None, "不是整数")
    text = unicodedata.normalize("NFKC", _SPACES.sub("", str(value))).rstrip("人口个月")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None, "不是整数"
    if not number.is_finite() or (number and number.adjusted() >= MAX_DIGITS):  # "inf"; int() of 1E999999999 would not end
        return None, "不是整数"
    return (int(number), "") if number == number.to_integral_value() else (None, "不是整数")


def apply_distinct(series: pd.Series, fn: Callable[[object], tuple[object, str]]) -> tuple[pd.Series, pd.Series]:
    """Apply a normalizer once per distinct value; returns (values, reasons)."""
    cache: dict[tuple[type, object], tuple[object, str]] = {}
    values: list[object] = []
    reasons: list[str] = []
    for raw in series.tolist():
        try:
            key = (type(raw), raw)
            hit = cache.get(key)
        except TypeError:  # unhashable
            key, hit = None, None
        if hit is None:
            hit = fn(raw)
            if key is not None:
                cache[key] = hit
        values.append(hit[0])
        reasons.append(hit[1])
    return pd.Series(values, index=series.index, dtype=object), pd.Series(reasons, index=series.index, dtype=object)


def normalizer_for(col: Col, column: pd.Series) -> Callable[[object], tuple[object, str]]:
    if col.kind == "code":
        return lambda v: normalize_code(v, col.codes)
    if col.kind == "multi":
        return lambda v: normalize_multi(v, col.codes)
    if col.kind == "yesno":
        no_when_blank = blank_means_no(column)
        return lambda v: normalize_yesno(v, no_when_blank)
    if col.kind == "amount":
        return normalize_amount
    if col.kind == "int":
        return normalize_int
    if col.kind == "text" and col.key == "note":
        return lambda v: (clean_text(v, keep_inner_space=True), "")
    return lambda v: (clean_text(v), "")
