"""The dashboard served by the daemon (`run --http-port`): scheduler.web.app."""

from scheduler.web.app import Dashboard, Sources
from scheduler.web.fleet import SiteFact

__all__ = ["Dashboard", "SiteFact", "Sources"]
