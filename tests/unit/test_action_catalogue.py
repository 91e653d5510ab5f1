"""The action catalogue: one declaration per action, read by config without the Kinsta client,
and the README's action table kept true to it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.actions import NoOptions, Scope, define, registry
from scheduler.actions.backups import BackupOptions
from scheduler.actions.catalogue import CATALOGUE
from scheduler.actions.specs import Catalogue, company_target_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_config_reads_the_catalogue_without_loading_the_kinsta_client() -> None:
    code = (
        "import sys, scheduler.config\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'httpx'"
        " or m.startswith('scheduler.kinsta'))\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_each_action_is_declared_once_with_a_lower_snake_case_name() -> None:
    assert len(registry()) == 18
    with pytest.raises(ValueError, match="two actions are named 'backup'"):
        Catalogue([CATALOGUE["backup"], CATALOGUE["backup"]])
    with pytest.raises(ValueError, match="lower_snake_case"):
        Catalogue([define("Backup", CATALOGUE["backup"].run, BackupOptions)])
    with pytest.raises(ValueError, match="two actions"), CATALOGUE.registered(CATALOGUE["backup"]):
        pass
    assert len(registry()) == 18


def test_an_action_receives_its_options_model_or_its_defaults() -> None:
    backup = CATALOGUE["backup"]
    assert backup.options_of(None) == BackupOptions()
    assert backup.options_of(BackupOptions(tag="x")).tag == "x"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="backup takes BackupOptions"):
        backup.options_of(NoOptions())
    assert CATALOGUE.step("backup", tag="weekly").options == BackupOptions(tag="weekly")


def test_scopes_and_flags_live_in_the_declarations() -> None:
    assert {n for n, a in CATALOGUE.items() if a.scope is Scope.COMPANY} == {"create_site"}
    assert {n for n, a in CATALOGUE.items() if a.on_demand} == {
        "push_to_live",
        "create_staging",
        "restore_backup",
        "create_site",
        "clone_site",
        "add_domain",
        "remove_domain",
    }
    assert {n for n, a in CATALOGUE.items() if not a.mutating} == {"fetch_logs", "inventory"}
    site = CATALOGUE.step("create_site", **_SITE)
    assert company_target_name(site, "job") == "Shop"
    assert company_target_name(CATALOGUE.step("clear_cache"), "job") == "job"


_SITE = {
    "display_name": "Shop",
    "region": "us-central1",
    "admin_email": "a@example.com",
    "admin_user": "admin",
    "admin_password": "long enough",
}


def _section(start: str, end: str) -> str:
    return README.split(start, 1)[1].split(end, 1)[0]


def test_the_readme_names_every_action_where_it_belongs() -> None:
    """Routine actions have a row in the action table naming each of their options; on-demand
    actions are listed, with their options, among the on-demand actions."""
    table = _section("| action | options | what it does |", "\n\n")
    on_demand = _section("**On-demand actions**", "\n\n")
    rows = {
        name: row
        for row in table.splitlines()
        for name in re.findall(r"`([a-z_]+)`", row.split("|")[1] if "|" in row else "")
    }
    for name, action in CATALOGUE.items():
        fields = set(action.options.model_fields)
        if action.on_demand:
            assert f"`{name}`" in on_demand and name not in rows, name
            if name != "create_site":  # its optional fields are summed up as "..."
                assert all(f"`{f}" in on_demand for f in fields), name
        else:
            assert name in rows, f"{name} has no row in the README's action table"
            assert all(f"`{f}" in rows[name] for f in fields), (name, fields)
