"""Where everything lives: the folders and fixed file names of the data root and the reports root.

The one source of these names (outputs.md, "Everything goes under one reports root"). Assets reach
the folders through ``PathsResource`` (``paths.draft``, ``paths.signed`` …) on the configured
roots; plain functions that are handed a root join these names to it. No Dagster here.
"""

from __future__ import annotations

DRAFT_DIR = "draft"  # 附件1–6 and the 核查比对结果表, rebuilt every run
PUBLIC_DIR = "public"  # the 公示 lists
PROBLEMS_DIR = "problems"  # one 问题清单 per village, and the district summary
QUALITY_DIR = "quality"  # the Great Expectations Data Docs (index.html)
SIGNED_DIR = "signed"  # signed packages, never overwritten
TEMPLATE_DIR = "template"  # the blank survey workbook for villages
PROGRESS_FILE = "进度.xlsx"  # at the top of the reports root
ANNEX1_FILE = "附件1_入户调查汇总表.xlsx"

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE = "data/warehouse/huitoukan.duckdb"
DEFAULT_REPORTS_DIR = "reports"
# The read-only file server that `huitoukan ui` starts beside the Dagster UI serves the reports root here.
DEFAULT_DOWNLOAD_URL = "http://127.0.0.1:3001"
# The deployment's roots and download address, as environment variables (the UI's processes, the service)
ENV_RAW_DIR, ENV_WAREHOUSE, ENV_REPORTS_DIR = "HUITOUKAN_RAW_DIR", "HUITOUKAN_WAREHOUSE", "HUITOUKAN_REPORTS_DIR"
ENV_DOWNLOAD_URL = "HUITOUKAN_DOWNLOAD_URL"

