"""Bad releases arranged in jobs.yaml, through the real CLI's in-process sandbox (`trigger
--sandbox`, issue 15): one site with one bad and three good updates; the safe update that takes
the bad one is rolled back and isolates it (the good ones stay applied), the one that leaves it
out goes through."""

from __future__ import annotations

import re

from tests.acceptance.conftest import Cli

# Kinsta's limits over a window scaled down with the sandbox's time (both triggers share the
# history's rate ledger: at 60 s the second waited ~35 s for the budget the first had spent).
JOBS = """version: 1
kinsta:  # still two lines: the tests below name line numbers of this file
  {polling: {first_poll: 0.02s, max_interval: 0.1s}, rate_limits: {window: 3s}}
sandbox:
  sites: 3
  seed: 4
  time_scale: 0.002
  seeded_updates: false          # only the offers below are on offer
  bad_releases:
    - {name: plugin-a, version: "2.0.0", effect: fatal}
  offers:                        # on the live environment of the site whose name ends in -1
    - {name: plugin-a, version: "2.0.0", installed: "1.0.0", sites: ["*-1"], environment: live}
    - {name: plugin-b, version: "1.0.1", installed: "1.0.0", sites: ["*-1"], environment: live}
    - {name: plugin-c, version: "3.2.0", installed: "3.1.0", sites: ["*-1"], environment: live}
    - {name: plugin-d, version: "1.0.0", installed: "0.9.0", sites: ["*-1"], environment: live}
jobs:
  - id: everything
    targets: {sites: ["*-1"]}
    actions:
      - update_plugins: {safe: true}
  - id: all-but-a
    targets: {sites: ["*-1"]}
    actions:
      - update_plugins: {safe: true, exclude: [plugin-a]}
"""


def test_a_bad_release_from_jobs_yaml_is_rolled_back_and_the_good_ones_go_through(
    cli: Cli,
) -> None:
    (cli.cwd / "jobs.yaml").write_text(JOBS)
    assert cli("validate", "--sandbox", "--offline").code == 0

    broken = cli("trigger", "everything", "--sandbox")
    assert broken.code == 1, broken.err[-2000:]
    task = cli("show", "1", "--format", "json").json()["tasks"][0]
    assert task["status"] == "rolled_back"
    before = {"plugin-a": "1.0.0", "plugin-b": "1.0.0", "plugin-c": "3.1.0", "plugin-d": "0.9.0"}
    assert task["versions_before"] == {"plugins": before}
    # culprit isolation (isolate: true, the default) kept the three good updates
    kept = {"plugin-a": "1.0.0", "plugin-b": "1.0.1", "plugin-c": "3.2.0", "plugin-d": "1.0.0"}
    assert task["versions_after"] == {"plugins": kept}
    problems = task["result"]["verify"]["problems"]
    assert any("answered 500" in p for p in problems) and any("PHP fatal" in p for p in problems)

    good = cli("trigger", "all-but-a", "--sandbox")  # a fresh sandbox, arranged the same way
    assert good.code == 0, good.err[-2000:]
    task = cli("show", "2", "--format", "json").json()["tasks"][0]
    assert task["status"] == "succeeded"
    after = {"plugin-b": "1.0.1", "plugin-c": "3.2.0", "plugin-d": "1.0.0"}
    assert task["versions_after"] == {"plugins": after}


def test_a_bad_sandbox_arrangement_is_refused_with_its_file_and_line(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        JOBS.replace("effect: fatal}", "effect: explode}").replace('installed: "1.0.0", ', "", 1)
    )
    refused = cli("validate", "--sandbox", "--offline")
    assert refused.code == 2
    assert "jobs.yaml:10: sandbox.bad_releases.0.effect: unknown effect 'explode'" in refused.err

    (cli.cwd / "jobs.yaml").write_text(JOBS.replace('installed: "1.0.0", ', "", 1))
    unmatched = cli("trigger", "everything", "--sandbox")
    assert unmatched.code == 2 and "Traceback" not in unmatched.err
    assert "sandbox.offers.0: no environment of the sites *-1 has 'plugin-a'" in unmatched.err

    flag = cli("sandbox", "--bad-release", "elementor@3.2.1:explode")
    assert flag.code == 2 and "--bad-release 'elementor@3.2.1:explode': unknown effect" in flag.err


REWRITTEN = """version: 1
kinsta:
  polling: {first_poll: 0.02s, max_interval: 0.1s}
sandbox:
  sites: 3
  seed: 4
  time_scale: 0.002
  seeded_updates: false
  bad_releases:
    - {name: plugin-a, version: "2.0.0", effect: changed}
    - {name: plugin-b, version: "1.0.1", effect: "slow:20"}
  offers:
    - {name: plugin-a, version: "2.0.0", installed: "1.0.0", sites: ["*-1"], environment: live}
    - {name: plugin-b, version: "1.0.1", installed: "1.0.0", sites: ["*-2"], environment: live}
jobs:
  - id: rewritten
    targets: {sites: ["*-1"], environment: live}
    actions:
      - update_plugins: {safe: true, verify: {paths: [/], max_size_change: 80%}}
  - id: slowed
    targets: {sites: ["*-2"], environment: live}
    actions:
      - update_plugins: {safe: true, verify: {max_slowdown: 4x, slowdown_floor: 50ms}}
"""


def test_a_rewritten_or_slowed_page_is_rolled_back_and_show_names_the_check(cli: Cli) -> None:
    """Compared with the page right before the update: a release that rewrites the page fails
    on its title, size and structure; one that makes it 20 times slower, on its response time
    (slow:5 measures 3.4 to 4.7 times on loopback: tests use 10 and more)."""
    (cli.cwd / "jobs.yaml").write_text(REWRITTEN)
    assert cli("trigger", "rewritten", "--sandbox").code == 1
    assert cli("trigger", "slowed", "--sandbox").code == 1
    failed = {}
    for run in ("1", "2"):
        (task,) = cli("show", run, "--format", "json").json()["tasks"]
        assert task["status"] == "rolled_back"
        checks = task["result"]["verify"]["checks"]
        assert {"name", "url", "ok", "before", "after", "detail"} <= set(checks[0])
        failed[run] = [c["name"] for c in checks if not c["ok"]]
    assert failed == {"1": ["title", "size", "structure"], "2": ["response_time"]}

    shown = cli("show", "1")
    assert shown.code == 0
    assert re.search(r"-1/live check title failed at \S+/: title changed: '.+' -> 'Coming soon'",
                     shown.out), shown.out  # fmt: skip
    assert "check structure failed at" in shown.out and "(min_structure_similarity)" in shown.out
    assert "check response_time" not in shown.out  # only the failed checks are shown
    slowed = cli("show", "2").out
    assert "check response_time failed at" in slowed and "beyond 4x (max_slowdown)" in slowed


def test_a_bad_verify_option_is_refused_naming_the_field(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        REWRITTEN.replace("max_size_change: 80%", "max_size_change: 0.8")
    )
    refused = cli("validate", "--sandbox", "--offline")
    assert refused.code == 2 and "Traceback" not in refused.err
    assert (
        "jobs.yaml:19: job 'rewritten': actions.0.update_plugins.verify.max_size_change: "
        'give a percentage such as "50%", not 0.8'
    ) in refused.err
