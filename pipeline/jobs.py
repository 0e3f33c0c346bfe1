"""Jobs: the district rebuild, one village's intake, and the sign-off.

``full_rebuild`` is everything except the per-village intake (partitioned: a job mixing it with
the unpartitioned assets could not run) and the sign-off (only ever launched by a person, with
the signer's name and decision as config); it ends with ``signoff_readiness``, the 签字条件.
"""

import dagster as dg

from pipeline.partitions import village_partitions
from pipeline.schema import DEPARTMENTS
from pipeline.tables import dept_table

SIGNOFF_ASSET, INTAKE_ASSET = "signoff", "village_submission"

full_rebuild = dg.define_asset_job(
    "full_rebuild",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SIGNOFF_ASSET, INTAKE_ASSET),
    description="全区重建：从数据目录的文件重新生成全部结果——读取、清洗、收入、部门比对、数据质量、分类、"
                "各附件草稿、问题清单、进度表和签字条件（不含签字，签字只由人发起）。(Rebuild everything from "
                "the files under the data root, except the sign-off.)",
)

survey_rebuild = dg.define_asset_job(
    "survey_rebuild",
    # the Great Expectations step checks the department tables too and cannot run in part: their
    # checks come along (on the tables as the last full rebuild left them)
    selection=(dg.AssetSelection.assets("survey_workbooks").downstream()
               - dg.AssetSelection.assets(SIGNOFF_ASSET, INTAKE_ASSET))
    | dg.AssetSelection.checks_for_assets(*(dept_table(d.key) for d in DEPARTMENTS)),
    description="调查表重建：有新的村调查表时，只重建依赖调查表的部分（名册、建档立卡和部门数据沿用上次读取的结果），"
                "更快得到新草稿；survey_sensor 启动它。(Rebuild what depends on the survey workbooks.)",
)

village_intake = dg.define_asset_job(
    "village_intake",
    selection=dg.AssetSelection.assets(INTAKE_ASSET),
    partitions_def=village_partitions,
    description="读取一个村最新的调查表（按村分区，村代码_村名称），立即看到户数、人数和要修改的单元格。"
                "(Read one village's newest survey workbook; launched by a click on its partition.)",
)

signoff_job = dg.define_asset_job(
    "signoff_job",
    selection=dg.AssetSelection.assets(SIGNOFF_ASSET),
    description="签字：领导小组组长对草稿的决定。只需填写 signer（签字人）、decision（同意/不同意）、comment（意见）。"
                "(Sign-off: the leader's decision on the drafts.)",
)

ALL_JOBS = [full_rebuild, survey_rebuild, village_intake, signoff_job]
