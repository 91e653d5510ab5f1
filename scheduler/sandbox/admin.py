"""The admin endpoints that arrange the fleets (POST /_sandbox/...; server.py lists them all).

Each takes the fleets (the first company's first) and the request's JSON object, and answers a
problem (400) or what to add to {"ok": true}. Bad releases and offers apply to every company.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scheduler.sandbox.offers import apply_offer, offer_from_json
from scheduler.sandbox.state import Fleet
from scheduler.sandbox_values import Effect, SandboxOffer, SandboxRelease, parse_version

BREAK_MODES = ("fatal", "blank")

Answer = str | dict[str, Any]  # a problem, or the answer's fields


def fail_next(fleets: list[Fleet], request: dict[str, Any]) -> Answer:
    """{"kind": "cache:clear", "count": 1}: the first company's upcoming operations fail."""
    fleet = fleets[0]
    with fleet.lock:
        fleet.fail_next[str(request["kind"])] += int(request.get("count", 1))
    return {}


def break_on_update(fleets: list[Fleet], request: dict[str, Any]) -> Answer:
    """{"name": "elementor", "mode": "fatal"|"blank"}: every update of it is a bad release."""
    mode = str(request.get("mode", "fatal"))
    if mode not in BREAK_MODES:
        return f"mode must be one of {', '.join(BREAK_MODES)}"
    return bad_release(fleets, {"name": request.get("name"), "version": None, "effect": mode})


def bad_release(fleets: list[Fleet], request: dict[str, Any]) -> Answer:
    """{"name": "elementor", "version": "3.2.1" (or null / "*": every version), "effect":
    "fatal"}; "effect": null takes the rule away (installed versions keep theirs)."""
    name, effect = request.get("name"), request.get("effect")
    if not isinstance(name, str) or not name.strip():
        return "name: name a plugin or theme"
    try:
        version = parse_version(request.get("version"), every=True)
        text = None if effect is None else str(Effect.parse(str(effect)))
    except ValueError as exc:
        return str(exc)
    for fleet in fleets:
        with fleet.lock:
            if text is None:
                fleet.releases.remove(name, version)
            else:
                fleet.releases.add(SandboxRelease(name, version, text))
    return {"bad_releases": fleets[0].releases.to_json()}


def offer(fleets: list[Fleet], request: dict[str, Any]) -> Answer:
    """{"name", "version" (null: none offered), "sites": [globs], "environment", "installed",
    "kind"} (offers.py): how many plugins and themes it changed; none is a problem."""
    try:
        found = offer_from_json(request)
    except ValueError as exc:
        return str(exc)
    changed = sum(apply_offer(fleet, found) for fleet in fleets)
    if not changed:
        return unmatched(found)
    return {"changed": changed}


def unmatched(found: SandboxOffer) -> str:
    sites = ", ".join(found.sites)
    if found.installed is not None:
        return f"no site matches {sites}"
    return (
        f"no environment of the sites {sites} has {found.name!r} installed "
        "(give installed: VERSION to install it)"
    )


CHANGES: dict[str, Callable[[list[Fleet], dict[str, Any]], Answer]] = {
    "/fail-next": fail_next,
    "/break-on-update": break_on_update,
    "/bad-release": bad_release,
    "/offer": offer,
}
