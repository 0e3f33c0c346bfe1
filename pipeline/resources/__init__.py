"""Resources: the DuckDB warehouse, the paths of the data and reports roots, the settings, and the
Great Expectations worker.

Each is declared once, read from the environment (HUITOUKAN_RAW_DIR, HUITOUKAN_WAREHOUSE,
HUITOUKAN_REPORTS_DIR, HUITOUKAN_SETTINGS) and overridable in run config or tests.
"""

from pipeline.resources.paths import PathsResource
from pipeline.resources.quality import GreatExpectationsResource
from pipeline.resources.settings import SettingsResource
from pipeline.resources.warehouse import WAREHOUSE_POOL, WarehouseResource, replace_table

__all__ = ["WAREHOUSE_POOL", "GreatExpectationsResource", "PathsResource", "SettingsResource", "WarehouseResource", "replace_table"]
