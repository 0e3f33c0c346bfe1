"""签字条件: whether the drafts can be signed now, shown before anyone signs.

Every rebuild (and "Materialize all") materializes ``signoff_readiness`` after the drafts and the
problem lists: a Markdown table with each condition of outputs.md (签字) met or not, with counts,
the villages or departments concerned, and links to the villages' 问题清单. The sign-off asset
shows the same table when it signs, records a 不同意, or refuses.
"""

import dagster as dg

from pipeline.assets.problem_lists import list_path
from pipeline.readiness import MET, NOT_MET, PACKAGE_ASSETS, conditions_markdown, office_now, signoff_conditions
from pipeline.resources import WAREHOUSE_POOL, PathsResource, SettingsResource, WarehouseResource
from pipeline.resources.warehouse import last_build

TABLE_LABEL = "签字条件（sign-off conditions）"


def problem_list_link(paths: PathsResource):
    """A village row -> the download link of its 问题清单 (None when it has none)."""
    def link(village) -> str | None:
        path = list_path(paths.problems, village.subdistrict_name, village.village_code, village.village_name)
        return paths.download_url(path) if path.exists() else None
    return link


def condition_line(c) -> str:
    """一条签字条件 as one line of text: 满足/未满足, the count, who is concerned (no links)."""
    import re

    who = "、".join(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", x) for x in c.concerned[:10])
    more = f"……等 {len(c.concerned)} 项" if len(c.concerned) > 10 else ""
    return f"{MET if c.met else NOT_MET}｜{c.count}" + (f"｜{who}{more}" if who else "")


def conditions_table(con, paths: PathsResource, built, tz) -> dg.MetadataValue:
    return dg.MetadataValue.md(conditions_markdown(
        signoff_conditions(con, paths.raw, paths.reports, built, problem_link=problem_list_link(paths), tz=tz)))


@dg.asset(group_name="step9_signoff", pool=WAREHOUSE_POOL, kinds={"duckdb"},
          deps=[*PACKAGE_ASSETS, "problem_lists", "progress"])
def signoff_readiness(paths: PathsResource, warehouse: WarehouseResource,
                      settings: SettingsResource) -> dg.MaterializeResult:
    """签字条件：现在能否签字，每个条件是否满足、数量、涉及的村或部门及其问题清单链接
    (sign-off readiness: each condition of the sign-off, met or not). Rebuilt with every district
    rebuild; signs nothing."""
    tz = settings.get().tz
    with warehouse.connect(read_only=True) as con:
        built = last_build(con)
        conditions = signoff_conditions(con, paths.raw, paths.reports, built,
                                        problem_link=problem_list_link(paths), tz=tz)
    unmet = [c for c in conditions if not c.met]
    # one line per condition too: text entries show in the asset page's table without a click
    lines = {f"{i}. {c.label}": condition_line(c) for i, c in enumerate(conditions, start=1)}
    return dg.MaterializeResult(metadata={
        **lines,
        TABLE_LABEL: dg.MetadataValue.md(conditions_markdown(conditions)),
        "可以签字（ready to sign）": not unmet,
        "未满足的条件数（conditions not met）": len(unmet),
        "检查时间（checked at）": office_now(tz).isoformat(),
    })
