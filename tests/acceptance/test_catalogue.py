"""Every action of the catalogue through the real CLI against the sandbox, with the sandbox's own
state showing the effect; safe updates rolling back a site broken by an update; two jobs on the
same environments never overlapping their mutating operations."""

from __future__ import annotations

import math
from typing import Any

from scheduler.planning import POLLS_PER_OPERATION
from tests.acceptance.conftest import SANDBOX_KEY, Cli, SandboxProcess, pending_plugin

HEAD = """version: 1
kinsta:
  rate_limits: {per_minute: 600}
  polling: {first_poll: 0.05s, max_interval: 0.2s}
"""

NIGHTLY = (
    HEAD
    + """jobs:
  - id: nightly
    targets: {environment: all}
    concurrency: 8
    actions:
      - backup: {tag: nightly, find_id: true}
      - update_plugins: {exclude: [woocommerce]}
      - update_themes: {only: minor}
      - set_php_version: {version: "8.3"}
      - restart_php
      - clear_cache
      - clear_edge_cache
      - clear_cdn_cache
      - fetch_logs: {file: error, lines: 100}
      - inventory
      - prune_backups: {keep: 1}
"""
)


def use(cli: Cli, sandbox: SandboxProcess, jobs: str) -> None:
    (cli.cwd / "jobs.yaml").write_text(jobs)
    cli.env.update(
        KINSTA_API_URL=sandbox.url,
        KINSTA_API_KEY=SANDBOX_KEY,
        KINSTA_SCHEDULER_SITE_BASE_URL=sandbox.url.removesuffix("/v2"),
    )


def clean(sandbox: SandboxProcess) -> None:
    stats = sandbox.stats()
    assert stats["violations"] == [] and stats["response_violations"] == []
    assert stats["rate_limited"] == 0 and stats["canned"] == {}
    assert stats["overlaps"] == 0


def step(old: str, new: str) -> str:
    a, b = old.split("."), new.split(".")
    return "patch" if a[:2] == b[:2] else "minor" if a[0] == b[0] else "major"


def tasks_by(shown: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [t for t in shown["tasks"] if t["action"] == action]


def test_the_maintenance_actions_change_the_sites(cli: Cli, quick_sandbox: SandboxProcess) -> None:
    use(cli, quick_sandbox, NIGHTLY)
    before = quick_sandbox.state()

    result = cli("trigger", "nightly")
    assert result.code == 0, result.out + result.err[-3000:]
    assert "run 1: succeeded" in result.out
    assert "[8/8]" in result.err  # plain progress lines when not on a terminal

    after = quick_sandbox.state()
    assert after.keys() == before.keys() and len(after) == 8
    for key, was in before.items():
        now = after[key]
        for name, latest in was["updates"].items():
            if name in was["plugins"]:
                expected = was["plugins"][name] if name == "woocommerce" else latest
                assert now["plugins"][name] == expected, (key, name)
            else:
                small = step(was["themes"][name], latest) != "major"
                assert now["themes"][name] == (latest if small else was["themes"][name])
        assert now["php"] == "8.3"
        manual = [b for b in now["backups"] if b["type"] == "manual"]
        assert [b["note"] for b in manual] == ["nightly"]  # one taken, older ones pruned
        automatic = [b for b in was["backups"] if b["type"] == "automatic"]
        assert [b for b in now["backups"] if b["type"] == "automatic"] == automatic
        counters = now["counters"]
        for kind in ("cache:clear", "edgeCache:clear", "cdn-cache:clear", "php:restart"):
            assert counters.get(f"{kind}:done") == 1, (key, kind)
    clean(quick_sandbox)

    shown = cli("show", "1", "--format", "json").json()
    updated = [t for t in tasks_by(shown, "update_plugins") if t["status"] == "succeeded"]
    assert updated, "the seeded fleet has plugin updates"
    for task in updated:
        moved = task["versions_after"]["plugins"]
        assert task["versions_before"]["plugins"].keys() == moved.keys()
        key = f"{task['site']}/{task['environment']}"
        assert moved == {n: after[key]["plugins"][n] for n in moved}
        assert task["operation_status"] == "succeeded"
        assert task["operations"][-1]["timeline"][-1]["state"] == "succeeded"
        assert "->" in task["changes"]
    for task in shown["tasks"]:
        assert task["status"] in ("succeeded", "skipped"), task
        if task["status"] == "skipped":
            assert task["message"]
    for task in tasks_by(shown, "backup"):
        kept = after[f"{task['site']}/{task['environment']}"]["backups"]
        assert task["result"]["backup"]["id"] in [b["id"] for b in kept]
    logs = tasks_by(shown, "fetch_logs")[0]["result"]
    assert logs["php_fatal_errors"] == 0 and logs["tail"] and logs["file"] == "error"

    sites = cli("sites", "--format", "json").json()
    inventories = [i for site in sites for i in site["inventory"]]
    assert len(inventories) == 8
    for entry in inventories:
        key = next(k for k in after if k.endswith(f"/{entry['environment']}"))
        assert entry["php_version"] == "8.3"
        assert {p["name"] for p in entry["plugins"]} <= set(after[key]["plugins"]) | {
            p["name"] for p in entry["plugins"]
        }
    woo = [
        p for i in inventories for p in i["plugins"] if p["name"] == "woocommerce"
    ]  # excluded from updates: still pending wherever it had one
    assert all(p["update_version"] is None or p["version"] != p["update_version"] for p in woo)

    table = cli("sites")
    assert table.code == 0 and "PHP 8.3" in table.out


def test_a_safe_update_that_breaks_the_site_is_rolled_back(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    before = quick_sandbox.state()
    site, plugin = pending_plugin(before)
    key = f"{site}/live"
    domain = before[key]["domains"][0]
    quick_sandbox.post("break-on-update", {"name": plugin, "mode": "fatal"})
    use(
        cli,
        quick_sandbox,
        HEAD
        + f"""jobs:
  - id: safe
    targets: {{sites: [{site}], environment: live}}
    actions:
      - update_plugins:
          include: [{plugin}]
          safe: true
          verify: {{paths: [/], status: 200, contains: Powered by WordPress}}
      - clear_cache
""",
    )
    assert quick_sandbox.page(domain)[0] == 200

    result = cli("trigger", "safe")
    assert result.code == 1, result.out + result.err[-2000:]
    assert "rolled_back" in result.out

    after = quick_sandbox.state()[key]
    assert after["plugins"][plugin] == before[key]["plugins"][plugin]  # restored
    assert after["broken"] is None
    status, body = quick_sandbox.page(domain)
    assert status == 200 and "Powered by WordPress" in body
    assert after["counters"].get("backups:restore:done") == 1

    shown = cli("show", "1", "--format", "json").json()
    assert shown["status"] == "failed" and shown["tasks_failed"] == 1
    update, cache = shown["tasks"]
    assert update["status"] == "rolled_back"
    old = before[key]["plugins"][plugin]
    assert update["versions_before"] == {"plugins": {plugin: old}}
    assert update["versions_after"] == {"plugins": {plugin: old}}
    problems = update["result"]["verify"]["problems"]
    assert any("answered 500" in p for p in problems), problems
    assert any("PHP fatal" in p for p in problems)
    assert update["result"]["rolled_back_to"] == update["result"]["backup"]["id"]
    kinds = [op["action"] for op in update["operations"]]
    assert kinds == ["backup", "update_plugins", "restore_backup"]
    assert all(op["state"] == "succeeded" for op in update["operations"])
    assert cache["status"] == "skipped"  # the pipeline stopped at the failed update
    rolled = cli("history", "--tasks", "--status", "rolled_back", "--format", "json").json()
    assert [t["task_id"] for t in rolled] == [update["task_id"]]
    clean(quick_sandbox)


def test_a_blank_page_after_an_update_counts_as_broken(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    before = quick_sandbox.state()
    site, plugin = pending_plugin(before)
    quick_sandbox.post("break-on-update", {"name": plugin, "mode": "blank"})
    use(
        cli,
        quick_sandbox,
        HEAD
        + f"""jobs:
  - id: safe
    targets: {{sites: [{site}]}}
    actions:
      - update_plugins: {{include: [{plugin}], safe: true, check_php_errors: false}}
""",
    )
    result = cli("trigger", "safe")
    assert result.code == 1
    task = cli("show", "1", "--format", "json").json()["tasks"][0]
    assert task["status"] == "rolled_back"
    assert any("blank page" in p for p in task["result"]["verify"]["problems"])
    assert quick_sandbox.state()[f"{site}/live"]["broken"] is None


def test_on_demand_actions(cli: Cli, quick_sandbox: SandboxProcess) -> None:
    before = quick_sandbox.state()
    sites = sorted({key.split("/")[0] for key in before})
    with_staging = sorted({k.split("/")[0] for k in before if k.endswith("/staging")})
    without_staging = [s for s in sites if s not in with_staging]
    pushed, plain = with_staging[0], without_staging[0]
    jobs = (
        HEAD
        + f"""jobs:
  - id: push
    targets: {{sites: [{pushed}], environment: staging}}
    actions: [push_to_live]
  - id: staging
    targets: {{sites: [{plain}]}}
    actions: [create_staging: {{display_name: QA}}]
  - id: restore
    targets: {{sites: [{pushed}]}}
    actions: [backup: {{tag: pre-restore}}, restore_backup: {{backup: latest_manual}}]
  - id: add-domain
    targets: {{sites: [{plain}]}}
    actions: [add_domain: {{domain: shop.example.org}}]
  - id: remove-domain
    targets: {{sites: [{plain}]}}
    actions: [remove_domain: {{domain: shop.example.org}}]
  - id: new-site
    actions:
      - create_site:
          display_name: Fresh Site
          region: us-central1
          admin_email: admin@example.org
          admin_user: admin
          admin_password: ${{ADMIN_PASSWORD}}
  - id: clone
    targets: {{sites: [{pushed}]}}
    actions: [clone_site: {{display_name: Clone Copy}}]
"""
    )
    use(cli, quick_sandbox, jobs)
    cli.env["ADMIN_PASSWORD"] = "s3cret-admin-pass"
    assert before[f"{pushed}/staging"]["plugins"] != before[f"{pushed}/live"]["plugins"]

    for job in ("push", "staging", "restore", "add-domain"):
        result = cli("trigger", job, "--yes")
        assert result.code == 0, (job, result.out, result.err[-2000:])
    state = quick_sandbox.state()
    assert state[f"{pushed}/live"]["plugins"] == before[f"{pushed}/staging"]["plugins"]
    assert f"{plain}/qa" in state  # the new staging environment, cloned from live
    assert state[f"{plain}/qa"]["plugins"] == state[f"{plain}/live"]["plugins"]
    assert state[f"{pushed}/live"]["counters"].get("backups:restore:done") == 1
    assert "shop.example.org" in state[f"{plain}/live"]["domains"]

    again = cli("trigger", "staging", "--yes")  # idempotent: the environment exists now
    assert again.code == 0 and "1 skipped" in again.out

    for job in ("remove-domain", "new-site", "clone"):
        result = cli("trigger", job, "--yes")
        assert result.code == 0, (job, result.out, result.err[-2000:])
    state = quick_sandbox.state()
    assert "shop.example.org" not in state[f"{plain}/live"]["domains"]
    assert "fresh-site/live" in state and "clone-copy/live" in state
    clean(quick_sandbox)

    history = cli("history", "--tasks", "--format", "json", "--limit", "100")
    assert "s3cret-admin-pass" not in history.out
    assert {t["action"] for t in history.json()} >= {
        "push_to_live",
        "create_staging",
        "restore_backup",
        "add_domain",
        "remove_domain",
        "create_site",
        "clone_site",
    }


def test_on_demand_actions_need_an_unscheduled_job(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        """version: 1
jobs:
  - id: nightly-push
    schedule: {cron: "0 3 * * *"}
    targets: {environment: live}
    actions: [push_to_live, {update_plugins: {only: sometimes}}]
"""
    )
    result = cli("validate", "--sandbox")
    assert result.code == 2
    assert "jobs.yaml:6: job 'nightly-push': actions.0: push_to_live is an on-demand" in result.err
    assert "set environment: staging" in result.err
    assert "only" in result.err and "Traceback" not in result.err


def test_two_jobs_on_the_same_environments_never_overlap(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    use(
        cli,
        quick_sandbox,
        HEAD
        + """jobs:
  - id: first
    targets: {environment: all}
    concurrency: 8
    actions: [backup, clear_cache]
  - id: second
    targets: {environment: all}
    concurrency: 8
    actions: [restart_php, backup]
""",
    )
    assert cli("db", "upgrade").code == 0
    both = [cli.start("trigger", job) for job in ("first", "second")]
    errors = ""
    for process in both:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, out + err[-2000:]
        errors += err
    stats = quick_sandbox.stats()
    assert stats["overlaps"] == 0
    per_env = quick_sandbox.state()
    for env in per_env.values():
        assert env["counters"].get("backups:add-manual:done") == 2
        assert env["counters"].get("php:restart:done") == 1
    # When the two runs' tasks on one environment overlapped in time (on a loaded machine one
    # run may start only after the other ended), one of them waited for the other's lock.
    spans: dict[tuple[str, str], dict[int, list[str]]] = {}  # env -> run -> its task times
    for run in cli("history", "--format", "json").json():
        for task in cli("show", str(run["run_id"]), "--format", "json").json()["tasks"]:
            times = spans.setdefault((task["site"], task["environment"]), {})
            times.setdefault(run["run_id"], []).extend([task["started_at"], task["finished_at"]])
    contended = any(
        len(runs) == 2 and max(min(t) for t in runs.values()) < min(max(t) for t in runs.values())
        for runs in spans.values()
    )
    if contended:
        assert "environment.lock_waited" in errors


def test_plan_and_validate_look_at_the_live_targets(
    cli: Cli, quick_sandbox: SandboxProcess
) -> None:
    use(
        cli,
        quick_sandbox,
        HEAD
        + """timezone: Europe/Amsterdam
jobs:
  - id: weekly
    schedule: {cron: "30 2 * * 0"}
    targets: {environment: all}
    actions: [backup, {update_plugins: {exclude: [hello-dolly]}}, clear_cache]
  - id: nightly
    schedule: {cron: "30 2 * * *"}
    actions: [clear_cache]
  - id: busy
    schedule: {every: 1m}
    targets: {sites: ["nothing-like-this-*"]}
    actions: [backup]
""",
    )
    assert cli("db", "upgrade").code == 0
    # Sunday noon: the weekly job's next slot is a week away, beyond --count 3 (issue 11.1).
    sunday = "2026-11-29T12:00:00+01:00"
    planned = cli("plan", "--format", "json", "--count", "3", "--at", sunday)
    assert planned.code == 0, planned.err
    jobs = {row["job_id"]: row for row in planned.json()}
    assert jobs["weekly"]["targets_note"] is None
    assert jobs["weekly"]["targets"] == 8 and jobs["nightly"]["targets"] == 5
    # The site list; per target backup's call, the plugin list and the bulk update, the cache
    # call, and for each of the 3 operations the polls expected before history knows them.
    assert jobs["weekly"]["requests"] == 1 + math.ceil(8 * (4 + 3 * POLLS_PER_OPERATION))
    assert jobs["busy"]["targets"] == 0
    # On Sundays the three start in the same minute: the weekly run shares the key's budget.
    assert jobs["weekly"]["shared_with"] == ["busy", "nightly"]
    assert jobs["weekly"]["shared_requests"] == sum(
        jobs[j]["requests"] for j in ("weekly", "nightly", "busy")
    )
    shared = "jobs weekly and nightly act on 5 shared environment(s)"
    assert any(shared in w for w in jobs["nightly"]["warnings"])
    assert jobs["weekly"]["warnings"] == jobs["nightly"]["warnings"]
    assert not jobs["busy"]["warnings"]
    assert planned.json()[1]["next_local"][0] == "2026-11-30T02:30:00+01:00"
    assert cli("plan", "--at", "7d").code == 2  # --at is a moment, not "ago"
    table = cli("plan", "--at", "2026-12-02T09:00:00+01:00")  # a Wednesday
    assert "8 target(s)" in table.out and "warning: jobs weekly and nightly" in table.err
    assert "shares the key's budget with busy, nightly (due in the same minute)" in table.out

    cli("trigger", "nightly")  # no inventory yet: the exclude check is skipped
    checked = cli("validate")
    assert checked.code == 0
    assert "'nothing-like-this-*' matches no site" in checked.err
    assert "hello-dolly" not in checked.err
    (cli.cwd / "inventory.yaml").write_text(HEAD + "jobs:\n  - id: inv\n    actions: [inventory]\n")
    assert cli("--config", "inventory.yaml", "trigger", "inv").code == 0
    checked = cli("validate")
    assert "update_plugins.exclude: no environment has plugins 'hello-dolly'" in checked.err
    assert cli("validate", "--offline").err == ""
