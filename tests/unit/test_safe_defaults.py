"""What ships must not act on its own: the Docker image carries no jobs, and the example's
fast demonstration job runs only against the sandbox."""

from __future__ import annotations

from pathlib import Path

from scheduler.daemon import load_for_daemon

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_puts_nothing_in_data() -> None:
    """A fresh named volume is filled from the image's /data: it must stay empty, so that the
    daemon refuses to start instead of running the example's jobs against production."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words and words[0] in ("COPY", "ADD"):
            assert not words[-1].startswith("/data"), line


def test_the_example_demo_job_is_scheduled_only_with_the_sandbox() -> None:
    path = ROOT / "jobs.yaml"
    live = load_for_daemon(path, {"KINSTA_API_KEY": "a-real-key"}, None, sandbox=False)()
    sandboxed = load_for_daemon(path, {}, None, sandbox=True)()
    assert "demo-cache-clear" not in {job.id for job in live.jobs}
    assert "demo-cache-clear" in {job.id for job in sandboxed.jobs}
    fast = [j.id for j in live.jobs if j.schedule is not None and "every" in repr(j.schedule)]
    assert fast == []
