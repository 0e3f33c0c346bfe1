"""A one-asset code location for the instance fault tests (the queue, not the pipeline, is tested)."""

import dagster as dg


@dg.asset
def ping() -> int:
    return 1


defs = dg.Definitions(assets=[ping], jobs=[dg.define_asset_job("ping_job", selection=[ping])])
