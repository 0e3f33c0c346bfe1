"""Jobs: the district rebuild, one village's intake, and the sign-off.

``full_rebuild`` is everything except the per-village intake (partitioned: a job mixing it with
the unpartitioned assets could not run) and the sign-off (only ever launched by a person, with
the signer's name and decision as config).
"""

import dagster as dg

from pipeline.partitions import village_partitions

SIGNOFF_ASSET, INTAKE_ASSET = "signoff", "village_submission"

full_rebuild = dg.define_asset_job(
    "full_rebuild",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SIGNOFF_ASSET, INTAKE_ASSET),
    description="Rebuild everything from the files under the data root: ingest, clean, income, "
                "cross-checks, quality, classification, every report and the progress sheet "
                "(not the sign-off, which only a person launches).",
)

village_intake = dg.define_asset_job(
    "village_intake",
    selection=dg.AssetSelection.assets(INTAKE_ASSET),
    partitions_def=village_partitions,
    description="Read one village's newest survey workbook as soon as it lands (the survey sensor "
                "launches it; one partition per 村代码).",
)

signoff_job = dg.define_asset_job(
    "signoff_job",
    selection=dg.AssetSelection.assets(SIGNOFF_ASSET),
    description="签字: the leader's decision on the drafts. Launchpad config: signer, decision (同意/不同意), comment.",
)

ALL_JOBS = [full_rebuild, village_intake, signoff_job]
