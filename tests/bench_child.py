"""The benchmark's child run (``python -m pipeline.bench --child RAW WAREHOUSE REPORTS``) for
tests/test_bench.py, with Great Expectations faked and its check left out (tests/fakes.py): the
module runs as ``-m`` runs it, its ``__main__`` block and all, but the resources it builds have the
GE stand-in, so the child starts no GE worker (an import of GE, 7-14 s of CPU, per child). The
test is about the benchmark not rotting; GE is tested for real in test_quality, test_ge_worker and test_privacy,
and ``huitoukan bench`` itself always runs the real pipeline.

    python tests/bench_child.py -m pipeline.bench --child RAW WAREHOUSE REPORTS
"""

import functools
import os
import runpy
import sys
from pathlib import Path

sys.path[0] = os.getcwd()  # as under -m: the working directory first, not this script's folder
sys.path.insert(0, str(Path(__file__).parent))  # fakes, as conftest.py does for the tests

from fakes import WITHOUT_GE_CHECK, FakeGreatExpectations  # noqa: E402

import pipeline.resources  # noqa: E402
import pipeline.runner  # noqa: E402

# build_resources' default GE resource (the child passes none), and the run without the GE check
# (child_run looks run_pipeline up when it runs)
pipeline.resources.GreatExpectationsResource = FakeGreatExpectations
pipeline.runner.run_pipeline = functools.partial(pipeline.runner.run_pipeline, checks=WITHOUT_GE_CHECK)

if __name__ == "__main__":
    flag, module, *args = sys.argv[1:]
    assert flag == "-m", sys.argv
    sys.argv[1:] = args
    runpy.run_module(module, run_name="__main__", alter_sys=True)
