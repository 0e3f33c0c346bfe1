"""Schedules: the nightly rebuild, so every morning's drafts, problem lists and progress sheet
hold everything that arrived the day before."""

import dagster as dg

from pipeline.jobs import full_rebuild
from pipeline.readiness import office_tz

NIGHTLY_CRON = "0 2 * * *"  # 02:00 office time, when nobody is clicking
OFFICE_TIMEZONE = office_tz().key  # Settings.timezone (Asia/Shanghai by default)

nightly_rebuild = dg.ScheduleDefinition(
    name="nightly_full_rebuild",
    job=full_rebuild,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=OFFICE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="每晚 02:00（办事处时区，默认北京时间）重建全区，早上的草稿、问题清单和进度表包含前一天到达的全部文件。"
                "(Rebuild the whole district at 02:00 office time every night.)",
)

ALL_SCHEDULES = [nightly_rebuild]
