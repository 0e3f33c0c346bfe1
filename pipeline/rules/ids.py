"""Resident ID numbers (rules.md, "Resident ID numbers"): repair, validate, detect Excel damage.

Repaired silently (and recorded): spaces (also full-width, also inside), full-width digits and
letters, lowercase x, a leading apostrophe, 15-digit first-generation numbers (→ 18 digits).
Never repaired: a number Excel damaged — a cell stored as a number with more than 15 digits, or
text in scientific notation, or 18 digits that end in zeros and fail the check (B2). Anything
else that does not validate is invalid (B1).
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
# First two digits of the area code of every province-level division (GB/T 2260).
PROVINCE_PREFIXES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)

_CLEAN18 = re.compile(r"[0-9]{17}[0-9X]")
_SCIENTIFIC = re.compile(r"^[0-9.]+E\+?[0-9]+$", re.IGNORECASE)
_DROP = re.compile(r"[\s\u3000\u200b\ufeff'‘’`\"“”-]")


class IdStatus(StrEnum):
    OK = "ok"
    REPAIRED = "repaired"  # valid after a silent repair
    MISSING = "missing"  # empty cell (B6 where required)
    INVALID = "invalid"  # B1
    DAMAGED = "damaged"  # B2: Excel destroyed it


@dataclass(frozen=True)
class IdResult:
    value: str | None  # the normalized 18-character ID when valid, else None
    status: IdStatus
    reason: str = ""  # for INVALID/DAMAGED (never contains the ID) and what was repaired

    @property
    def valid(self) -> bool:
        return self.status in (IdStatus.OK, IdStatus.REPAIRED)


def check_char(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("check_char needs exactly 17 digits")
    total = sum(map(operator.mul, map(int, first17), WEIGHTS))
    return CHECK_CHARS[total % 11]


def birth_date(id18: str) -> dt.date | None:
    try:
        return dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return None


def sex_of(id18: str) -> str:
    """男 when the sequence digit (17th) is odd, else 女."""
    return "男" if int(id18[16]) % 2 else "女"


def upgrade_15(id15: str) -> str:
    """A 15-digit first-generation number as 18 digits: ``19`` before the year, check computed."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_char(first17)


def _validate18(text: str) -> str:
    """'' when valid, else the reason it is not."""
    if not _CLEAN18.fullmatch(text):
        return "不是18位数字（末位可为X）"
    if text[:2] not in PROVINCE_PREFIXES:
        return "地区码不合理"
    born = birth_date(text)
    if born is None or born.year < 1880:
        return "出生日期不存在"
    if check_char(text[:17]) != text[17]:
        return "校验位错误"
    return ""


def repair_id(value: object) -> IdResult:
    """Repair and validate one cell value as read from a file.

    ``value`` keeps the type the reader saw: a ``float``/``int`` means Excel stored a number.
    """
    if value is None or (isinstance(value, float) and value != value):
        return IdResult(None, IdStatus.MISSING)
    if isinstance(value, bool):
        return IdResult(None, IdStatus.INVALID, "不是身份证号")
    if isinstance(value, (int, float)):
        return _repair_number(value)
    if type(value) is str and len(value) == 18 and _CLEAN18.fullmatch(value):
        reason = _validate18(value)  # the common case: already clean, nothing to repair
        if not reason:
            return IdResult(value, IdStatus.OK)
    raw = str(value)
    text = unicodedata.normalize("NFKC", raw)
    text = _DROP.sub("", text).upper()
    if not text:
        return IdResult(None, IdStatus.MISSING)
    if _SCIENTIFIC.match(text):
        return IdResult(None, IdStatus.DAMAGED, "被Excel存为科学计数法，末位已丢失")
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    repaired = text != raw
    if re.fullmatch(r"[0-9]{15}", text):
        born = birth_date(upgrade_15(text))
        if born is None or text[:2] not in PROVINCE_PREFIXES:
            return IdResult(None, IdStatus.INVALID, "15位旧号码无效")
        return IdResult(upgrade_15(text), IdStatus.REPAIRED, "15位旧号码已升为18位")
    reason = _validate18(text)
    if not reason:
        return IdResult(text, IdStatus.REPAIRED if repaired else IdStatus.OK, "已规范格式" if repaired else "")
    if reason == "校验位错误" and text.endswith("000"):
        return IdResult(None, IdStatus.DAMAGED, "末几位变成0，疑似被Excel按数字存储丢失精度")
    return IdResult(None, IdStatus.INVALID, reason)


def _repair_number(value: int | float) -> IdResult:
    if isinstance(value, float) and not value.is_integer():
        return IdResult(None, IdStatus.INVALID, "不是身份证号")
    digits = str(int(value))
    if len(digits) > 15:
        # Excel keeps 15 significant digits: an 18-digit ID stored as a number has lost its end.
        return IdResult(None, IdStatus.DAMAGED, "被Excel存为数字，末位已丢失")
    return repair_id(digits)
