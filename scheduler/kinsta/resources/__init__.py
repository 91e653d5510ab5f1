"""KinstaClient's endpoint groups, one module each, named as Kinsta's API reference names them."""

from scheduler.kinsta.resources.backups import Backups
from scheduler.kinsta.resources.base import Resource
from scheduler.kinsta.resources.company import Company
from scheduler.kinsta.resources.domains import Domains
from scheduler.kinsta.resources.environments import Environments
from scheduler.kinsta.resources.logs import Logs
from scheduler.kinsta.resources.sites import Sites
from scheduler.kinsta.resources.tools import Tools
from scheduler.kinsta.resources.wordpress import WpItems

__all__ = [
    "Backups",
    "Company",
    "Domains",
    "Environments",
    "Logs",
    "Resource",
    "Sites",
    "Tools",
    "WpItems",
]
