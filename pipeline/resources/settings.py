"""The settings of rules.md as a resource, so each can be set in the launchpad's run config
(``resources.settings.config``) as well as in the settings file."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from pipeline.settings import LABELS, Settings, load_settings


def _field(name: str):
    return Field(default=None, description=f"{LABELS[name]}（留空：设置文件或默认值 {getattr(Settings, name)}）")


class SettingsResource(dg.ConfigurableResource):
    """规则参数（settings of rules.md）。留空的项取设置文件（HUITOUKAN_SETTINGS 或 huitoukan.toml）
    或默认值；在这里填写的项优先。Every field of ``pipeline.settings.Settings`` is here
    (tests/test_architecture.py keeps the two lists equal)."""

    district_code: str | None = _field("district_code")
    district_name: str | None = _field("district_name")
    city_name: str | None = _field("city_name")
    reporting_unit: str | None = _field("reporting_unit")
    timezone: str | None = _field("timezone")
    income_year: int | None = _field("income_year")
    reference_date: str | None = _field("reference_date")
    identification_line: str | None = _field("identification_line")
    monitoring_line: str | None = _field("monitoring_line")
    poverty_line: str | None = _field("poverty_line")
    recheck_tolerance: str | None = _field("recheck_tolerance")
    bunching_band: int | None = _field("bunching_band")
    bunching_ratio: int | None = _field("bunching_ratio")
    bunching_min_above: int | None = _field("bunching_min_above")
    survey_deadline: str | None = _field("survey_deadline")
    subdistrict_deadline: str | None = _field("subdistrict_deadline")
    crosscheck_deadline: str | None = _field("crosscheck_deadline")
    signoff_deadline: str | None = _field("signoff_deadline")
    notice_start: str | None = _field("notice_start")
    notice_days: int | None = _field("notice_days")
    supervision_phone: str | None = _field("supervision_phone")

    def get(self) -> Settings:
        return load_settings({k: v for k, v in self.model_dump().items() if v is not None})
