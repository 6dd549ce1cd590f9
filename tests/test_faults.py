"""Faults over real HTTP through the whole run: each ends in a version, or in a failure that keeps the request id
and that `resume` mends, and never in a second submit."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from ltx_retake.adapters.local_service import Fault, LocalService, LocalServiceConfig
from ltx_retake.adapters.http_policy import RetryPolicy
from ltx_retake.adapters.services import open_service
from ltx_retake.compose import offline_wiring
from ltx_retake.journal import Journal
from ltx_retake.ports import RetakeMode
from ltx_retake.progress import Step
from ltx_retake.orders import RetakeOrder
from ltx_retake.runner import resume, run
from ltx_retake.settings import Secret, Settings

from media_fixtures import make_project

pytestmark = pytest.mark.slow
KEY = "fault-test-key-31c9"

FAULTS = {
    "429 with Retry-After on status": [Fault("status", "429", retry_after=0.3)],
    "500 on status": [Fault("status", "500")],
    "502 on upload": [Fault("upload", "502")],
    "503 on result": [Fault("result", "503", times=2)],
    "503 on submit (refused before acceptance)": [Fault("submit", "503")],
    "reset during upload": [Fault("upload", "drop")],
    "reset during download": [Fault("download", "drop", after_bytes=20_000)],
    "slow status": [Fault("status", "slow", delay=2.0)],
    "status stream drops": [Fault("stream", "drop", times=3)],
    "result URL expired": [Fault("download", "expired")],
    "result does not decode": [Fault("download", "corrupt")],
    "every download fails for a while": [Fault("download", "500", times=8)],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    cut, _ = make_project(tmp_path_factory.mktemp("faults"), Fraction(24), "01:00:00:00", seconds=5.0)
    return cut


# The long download failure waits out a real backoff of six tries; its waits are shortened (the retry policy is a seam
# of open_service), not its count.
QUICK_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)


@pytest.mark.parametrize("protocol", ["fal", "runcomfy"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_ends_in_a_version_or_in_a_failure_that_resume_mends(name, protocol, project, tmp_path):
    config = LocalServiceConfig(require_key=KEY, processing_delay=0.3, faults=list(FAULTS[name]))
    with LocalService(config) as svc, Journal(tmp_path / "j.sqlite") as journal:
        if protocol == "fal":
            settings = Settings(fal_queue_url=svc.base_url, fal_rest_url=svc.base_url, fal_key=Secret(KEY))
        else:  # RunComfy has no storage: the cut goes to fal storage (the local service speaks both)
            settings = Settings(runcomfy_url=svc.base_url, runcomfy_token=Secret(KEY), fal_rest_url=svc.base_url,
                                fal_key=Secret(KEY))
        order = RetakeOrder(timeline=project, output=tmp_path / "out.otio", prompt="a red door", mode=RetakeMode.REPLACE_VIDEO,
                            provider=protocol, model="fal-ai/ltx-2/retake-video" if protocol == "fal" else "ltx/ltx-2/retake-video",
                            clip="B", media_dir=tmp_path / "m")
        retry = QUICK_RETRY if name == "every download fails for a while" else None
        with open_service(protocol, settings, retry=retry) as opened:
            wiring = offline_wiring(settings)
            wiring.service, wiring.host = opened.service, opened.host
            outcome = run(order, wiring, journal=journal)
            (job,) = outcome.jobs
            if job.step != Step.SPLICED:
                assert job.recoverable, f"{name}: a failure resume cannot mend: {job.error}"
                if svc.jobs:  # the service took the request: its id is kept for the resume
                    assert job.request_id in svc.jobs, f"{name}: failed without keeping the request id: {job.error}"
                assert not (tmp_path / "out.otio").exists()
                outcome = resume(outcome.run_id, wiring, journal)
                (job,) = outcome.jobs
            assert job.step == Step.SPLICED, f"{name}: {job.error}"
        assert len(svc.jobs) == 1, f"{name}: the service took {len(svc.jobs)} requests for one job"
        assert (tmp_path / "out.otio").exists() and job.version.path.is_file()
        assert journal.runs()[0].state == "finished"
