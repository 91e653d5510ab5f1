"""A report as the JSON document of `report --format json` (the same data the HTML and PDF
show). Its fields are a contract: the README's "Client reports" lists them; a change of meaning
raises `format`."""

from __future__ import annotations

from typing import Any

from scheduler.reports.model import FORMAT, BudgetScope, Report, SiteReport, iso, share


def to_document(report: Report) -> dict[str, Any]:
    period = report.period
    passed, total = report.checks()
    sites = report.sites
    return {
        "format": FORMAT,
        "title": report.branding.title,
        "generated_at": iso(report.generated_at),
        "period": {
            "label": period.label,
            "start": iso(period.start),
            "end": iso(period.end),
            "timezone": str(period.zone),
        },
        "filters": report.filters,
        "fleet": {
            "sites": len(sites),
            "updates": sum(len(s.updates) for s in sites),
            "backups_taken": sum(len(s.backups) for s in sites),
            "backups_pruned": sum(s.backups_pruned for s in sites),
            "verifications": sum(len(s.verifications) for s in sites),
            "verifications_passed": sum(1 for s in sites for v in s.verifications if v.ok),
            "rollbacks": sum(len(s.rollbacks) for s in sites),
            "held_back": sum(len(s.held_back) for s in sites),
            "failures": sum(len(s.failures) for s in sites),
            "uptime": {
                "checks_passed": passed,
                "checks_total": total,
                "share": share(passed, total),
            },
            "outcomes": report.outcomes(),
            "updates_per_week": [
                {"week": monday.isoformat(), "updates": n} for monday, n in report.weeks
            ],
            "budget": _budget(report.budget),
            "per_day": [
                {
                    "day": d.day.isoformat(),
                    "tasks": d.tasks,
                    "operations": d.operations,
                    "requests": d.requests,
                    "rate_limited": d.rate_limited,
                }
                for d in report.days
            ],
        },
        "sites": [site_document(s) for s in sites],
    }


def site_document(site: SiteReport) -> dict[str, Any]:
    passed, total = site.checks
    return {
        "site": site.site,
        "updates": [
            {"environment": u.environment, "kind": u.kind, "item": u.item, "before": u.before,
             "after": u.after, "at": iso(u.at), "run_id": u.run_id, "task_id": u.task_id}
            for u in site.updates
        ],
        "backups": {
            "taken": [
                {"environment": b.environment, "at": iso(b.at), "reason": b.reason,
                 "backup_id": b.backup_id, "run_id": b.run_id, "task_id": b.task_id}
                for b in site.backups
            ],
            "pruned": site.backups_pruned,
            "kept": {v.environment: v.backups_kept for v in site.versions},
        },
        "verifications": [
            {"environment": v.environment, "at": iso(v.at), "ok": v.ok,
             "checks_passed": v.checks_passed, "checks_total": v.checks_total,
             "problems": list(v.problems), "run_id": v.run_id, "task_id": v.task_id}
            for v in site.verifications
        ],
        "uptime": _uptime(passed, total),
        "rollbacks": [
            {"environment": r.environment, "at": iso(r.at), "reason": r.reason,
             "restored_backup": r.restored_backup, "quarantined": list(r.quarantined),
             "run_id": r.run_id, "task_id": r.task_id}
            for r in site.rollbacks
        ],
        "held_back": [
            {"environment": h.environment, "kind": h.kind, "item": h.item, "reason": h.reason,
             "at": iso(h.at)}
            for h in site.held_back
        ],
        "failures": [
            {"environment": f.environment, "action": f.action, "at": iso(f.at),
             "message": f.message, "run_id": f.run_id, "task_id": f.task_id}
            for f in site.failures
        ],
        "versions": [
            {"environment": v.environment,
             "php": {"start": v.php_start, "end": v.php_end},
             "wordpress": {"start": v.wordpress_start, "end": v.wordpress_end},
             "start_at": iso(v.start_at), "end_at": iso(v.end_at)}
            for v in site.versions
        ],
        "outcomes": dict(sorted(site.outcomes.items())),
    }  # fmt: skip


def _budget(budget: BudgetScope) -> dict[str, Any]:
    companies = None if budget.companies is None else list(budget.companies)
    return {"companies": companies, "narrowed_to_sites": budget.narrowed, "label": budget.label()}


def _uptime(passed: int, total: int) -> dict[str, Any]:
    return {"checks_passed": passed, "checks_total": total, "share": share(passed, total)}
