"""The settings of rules.md: every number a user may change without touching code.

They come, in increasing priority, from the defaults below, a TOML settings file
(``HUITOUKAN_SETTINGS`` or ``huitoukan.toml`` in the working directory) and Dagster run config
(the ``settings`` resource). Every output records the settings that shaped it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SETTINGS_ENV = "HUITOUKAN_SETTINGS"
SETTINGS_FILE = "huitoukan.toml"

# 算账式脱贫 (W6): the width of the band either side of a line, the ratio and minimum count.
BUNCHING_BAND = 250
BUNCHING_RATIO = 2
BUNCHING_MIN_ABOVE = 5


@dataclass(frozen=True)
class Settings:
    district_code: str = "210505"
    district_name: str = "南芬区"
    city_name: str = "本溪市"  # the city the district belongs to (附件2's title names it)
    reporting_unit: str = "南芬区脱贫攻坚领导小组办公室"
    # every time shown to people (Excel, metadata, messages) is in this zone, whatever the server's clock
    timezone: str = "Asia/Shanghai"
    income_year: int = 2018
    reference_date: dt.date = dt.date(2019, 4, 30)
    identification_line: Decimal = Decimal("4500")  # 新识别
    monitoring_line: Decimal = Decimal("5000")  # 返贫/重点扶持
    poverty_line: Decimal = Decimal("4000")  # 返贫 vs 重点扶持
    recheck_tolerance: Decimal = Decimal("0.20")
    bunching_band: int = BUNCHING_BAND
    bunching_ratio: int = BUNCHING_RATIO
    bunching_min_above: int = BUNCHING_MIN_ABOVE
    # The notice's deadlines (README.md timeline), for progress reporting.
    survey_deadline: dt.date = dt.date(2019, 4, 30)
    subdistrict_deadline: dt.date = dt.date(2019, 5, 10)
    crosscheck_deadline: dt.date = dt.date(2019, 5, 16)
    signoff_deadline: dt.date = dt.date(2019, 5, 20)
    # The notices (公示) of 两公示一比对一公告: the first day of the village notice (第一次公示)
    # and the length of a 公示期 (the 办事处's 第二次公示 follows the next day), and the telephone
    # number for objections printed on every notice (empty: a blank line to fill in by hand).
    notice_start: dt.date = dt.date(2019, 5, 1)
    notice_days: int = 7
    supervision_phone: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def low_income_lines(self) -> tuple[Decimal, Decimal]:
        return (self.identification_line, self.monitoring_line)

    def as_record(self, *, for_village: bool = False) -> dict[str, str]:
        """Settings as strings with Chinese labels, for the 设置 sheet and manifests. A workbook
        that goes to a village (``for_village``) carries none of the detection thresholds."""
        return {LABELS.get(k, k): str(v) for k, v in dataclasses.asdict(self).items()
                if not (for_village and k in DETECTION_THRESHOLDS)}

    def notice_period(self, round_: int = 1) -> tuple[dt.date, dt.date]:
        """First and last day of the first (village) or second (办事处) 公示期."""
        start = self.notice_start + dt.timedelta(days=(round_ - 1) * self.notice_days)
        return start, start + dt.timedelta(days=self.notice_days - 1)

    def now(self) -> dt.datetime:
        """The current time in the district's time zone (seconds)."""
        return dt.datetime.now(self.tz).replace(microsecond=0)

    def local(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` in the district's time zone (a naive time is taken as already local)."""
        return moment.astimezone(self.tz) if moment.tzinfo is not None else moment

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(fields)}")
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if value is None or value == "":
                continue
            default = getattr(cls, name)
            kwargs[name] = _coerce(name, value, default)
        return cls(**kwargs)


LABELS = {
    "district_code": "区县代码",
    "district_name": "区县名称",
    "city_name": "所属市",
    "reporting_unit": "填报单位",
    "timezone": "时区（显示给人看的时间）",
    "income_year": "收入年度（上年度）",
    "reference_date": "数据截至（参照日期）",
    "identification_line": "新识别标准（元/人·年）",
    "monitoring_line": "返贫/重点扶持监测线（元/人·年）",
    "poverty_line": "贫困线（返贫与重点扶持分界）",
    "recheck_tolerance": "收入复核容差",
    "bunching_band": "算账式脱贫带宽（元）",
    "bunching_ratio": "算账式脱贫倍数",
    "bunching_min_above": "算账式脱贫最少户数",
    "survey_deadline": "入户调查截止",
    "subdistrict_deadline": "办事处汇总截止",
    "crosscheck_deadline": "部门比对截止",
    "signoff_deadline": "签字截止",
    "notice_start": "公示开始日期",
    "notice_days": "公示天数",
    "supervision_phone": "监督电话",
}

# The detection thresholds (W6 算账式脱贫, D5 收入复核): never written into a workbook that goes to
# a village, the very place being checked.
DETECTION_THRESHOLDS = ("bunching_band", "bunching_ratio", "bunching_min_above", "recheck_tolerance")

TIME_FORMAT = "%Y-%m-%d %H:%M"  # every time shown to people: 2019-05-20 09:30


def show_time(moment: dt.datetime, settings: Settings | None = None) -> str:
    """A time as people read it, in the district's time zone: ``2019-05-20 09:30``."""
    if settings is not None:
        moment = settings.local(moment)
    return moment.strftime(TIME_FORMAT)


def _coerce(name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, dt.date):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if isinstance(default, Decimal):
            return Decimal(str(value))
        if isinstance(default, int):
            return int(value)
        if name == "timezone":
            ZoneInfo(str(value))
        return str(value)
    except (ValueError, ArithmeticError, ZoneInfoNotFoundError) as exc:
        raise ValueError(f"setting {name}: cannot read {value!r} ({exc})") from exc


def settings_file() -> Path | None:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return Path(path)
    default = Path(SETTINGS_FILE)
    return default if default.exists() else None


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    values: dict[str, Any] = {}
    path = settings_file()
    if path is not None:
        if not path.exists():
            raise FileNotFoundError(f"settings file {path} (from {SETTINGS_ENV}) does not exist")
        with path.open("rb") as fh:
            values.update(tomllib.load(fh))
    values.update({k: v for k, v in (overrides or {}).items() if v not in (None, "")})
    return Settings.from_mapping(values)
