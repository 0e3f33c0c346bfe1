"""``python tests/pg_no_backoff.py -m MODULE ARGS…`` runs ``python -m MODULE ARGS…`` as ``-m``
runs it, with no wait between Dagster's retries of a refused PostgreSQL connection: the same
five retries and the same error, without the 6 s of back-off (as test_postgres_instance's
``no_waits_between_retries`` does in the test's own process). For a subprocess whose subject is
what it says when the server is down, not how long Dagster waits before saying it."""

import os
import runpy
import sys

sys.path[0] = os.getcwd()  # as under -m: the working directory first, not this script's folder

import dagster_postgres.utils  # noqa: E402

dagster_postgres.utils.calculate_delay = lambda **kwargs: 0

if __name__ == "__main__":
    flag, module, *args = sys.argv[1:]
    assert flag == "-m", sys.argv
    sys.argv[1:] = args
    runpy.run_module(module, run_name="__main__", alter_sys=True)
