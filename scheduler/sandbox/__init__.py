"""The built-in fake Kinsta API (real HTTP on loopback) for --sandbox, tests and benchmarks."""

from scheduler.sandbox.faults import FaultRule, Faults
from scheduler.sandbox.server import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer

__all__ = ["DEFAULT_API_KEY", "FaultRule", "Faults", "Sandbox", "SandboxOptions", "SandboxServer"]
