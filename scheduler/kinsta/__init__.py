"""The Kinsta API client. httpx is imported in this package only."""

from scheduler.kinsta.client import KinstaClient, OperationAccepted, OperationStatus
from scheduler.kinsta.governor import Governor, RateGovernor

__all__ = [
    "Governor",
    "KinstaClient",
    "OperationAccepted",
    "OperationStatus",
    "RateGovernor",
]
