"""The code location of the UI test (tests/test_ui_integration.py): the project's definitions as
``pipeline.definitions.defs`` builds them — the deployment's resources, their paths from the
environment ``huitoukan ui`` hands its code server — with Great Expectations faked
(tests/fakes.py): the UI's runs then start no GE worker. GE itself is tested in test_quality,
test_ge_worker and test_privacy."""

import sys
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).parent))  # fakes, as conftest.py does for the tests

from fakes import FakeGreatExpectations  # noqa: E402

from pipeline.definitions import build_defs  # noqa: E402
from pipeline.resources import build_resources  # noqa: E402


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(build_resources(ge=FakeGreatExpectations()))
