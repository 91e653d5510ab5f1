"""The Kinsta API client. httpx is imported in this package only."""

from scheduler.kinsta.client import KinstaClient
from scheduler.kinsta.governor import Governor, RateGovernor
from scheduler.kinsta.session import OperationAccepted, OperationStatus

__all__ = [
    "Governor",
    "KinstaClient",
    "OperationAccepted",
    "OperationStatus",
    "RateGovernor",
]
