"""schema: the JSON Schema of jobs.yaml, for editors and CI."""

from __future__ import annotations

import json

import click

from scheduler.cli.base import cli


@cli.command()
def schema() -> None:
    """Print the JSON Schema of jobs.yaml, generated from the code that reads it. Save it beside
    jobs.yaml (`kinsta-scheduler schema > jobs.schema.json`) and start jobs.yaml with
    `# yaml-language-server: $schema=./jobs.schema.json` for completion and checks as you type."""
    from scheduler.config.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
