"""The fault suite reuses the acceptance fixtures: the real CLI and a sandbox in subprocesses."""

from tests.acceptance.conftest import cli, daemons, quick_sandbox  # noqa: F401
