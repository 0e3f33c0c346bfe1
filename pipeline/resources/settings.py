
from typing import Optional

import dagster as dg

from pipeline.settings import Settings, load_settings


class SettingsResource(dg.ConfigurableResource):
    """The numbers of rules.md. Empty fields take the settings file (HUITOUKAN_SETTINGS) or the
    defaults; any field set here (e.g. in the launchpad's run config) wins."""

    income_year: Optional[int] = None
    reference_date: Optional[str] = None
    identification_line: Optional[str] = None
    monitoring_line: Optional[str] = None
    poverty_line: Optional[str] = None
    recheck_tolerance: Optional[str] = None
    district_code: Optional[str] = None
    district_name: Optional[str] = None

    def get(self) -> Settings:
        return load_settings({k: v for k, v in self.model_dump().items() if v is not None})
