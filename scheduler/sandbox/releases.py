"""Bad releases: which plugin and theme versions break an environment, and how that shows.

A bad release is (name, version or every version) -> effect. When an environment moves a plugin
or theme to a version (an update, or an offer that installs it: offers.py), the version's effect
is decided and kept on the installed copy (wordpress.Item.effect). So the effect follows the
installed version: restoring a backup taken before brings the healthy copy back, a push or a
clone carries the bad one along, and the next version change decides again. A rule added later
changes nothing already installed. A rule for every version (a name alone:
`--break-on-update`'s form) makes each update of that plugin or theme bad.

Effects, on every page of the environment unless said otherwise:
  blank        200 with an empty body
  fatal        500, WordPress's critical error page; PHP logs a fatal error
  path:/PATH   only that path answers 500 (a trailing slash aside); the homepage is fine
  php-fatals   pages are fine, but PHP logs a fatal error
  slow:F       pages answer F times slower than a healthy page (PAGE_S), bodies unchanged
  changed      the page's title and structure change markedly (still 200, still WordPress)
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.sandbox_values import Effect, SandboxRelease

# A healthy page's answer time at time_scale 1 (a WordPress page's server time), never less
# than PAGE_MIN_S so that a slow page stands out from loopback's own jitter at small scales.
PAGE_S = 0.2
PAGE_MIN_S = 0.01


def page_delay_s(effects: Iterable[Effect], time_scale: float) -> float:
    """How long a page of an environment with these effects takes to answer."""
    slowest = max((e.factor for e in effects if e.kind == "slow"), default=1.0)
    return max(PAGE_S * time_scale, PAGE_MIN_S) * slowest


class Releases:
    """The bad releases of a fleet, by (name, version); version None is every version."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str | None], Effect] = {}

    def add(self, release: SandboxRelease) -> None:
        self._rules[(release.name, release.version)] = Effect.parse(release.effect)

    def remove(self, name: str, version: str | None) -> None:
        self._rules.pop((name, version), None)

    def effect_of(self, name: str, version: str) -> Effect | None:
        """The effect of moving `name` to `version`: its own rule, else the every-version one."""
        return self._rules.get((name, version)) or self._rules.get((name, None))

    def to_json(self) -> list[dict[str, str | None]]:
        return [
            {"name": name, "version": version, "effect": str(effect)}
            for (name, version), effect in sorted(self._rules.items(), key=lambda r: str(r[0]))
        ]
