"""A one-asset code location for the instance fault tests (the queue, not the pipeline, is tested)."""

import dagster as dg


@dg.asset
def ping() -> int:
    return 1


# in process, as the project's own jobs (pipeline.definitions): the run worker the daemon
# launches executes the step itself, without a step process of its own (a Python start and a
# Dagster import that the queue, the subject here, has nothing to do with)
defs = dg.Definitions(assets=[ping], jobs=[dg.define_asset_job("ping_job", selection=[ping])],
                      executor=dg.in_process_executor)
