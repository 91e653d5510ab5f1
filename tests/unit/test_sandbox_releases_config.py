"""jobs.yaml's `sandbox.bad_releases`, `sandbox.offers` and `sandbox.seeded_updates`, and the
standalone sandbox's `--bad-release` flag (issue 15): every problem named with file, line and
field, in words that say how to fix it."""

from __future__ import annotations

import pytest

from scheduler.cli.sandbox import _parse_release
from scheduler.config import parse
from scheduler.errors import BadInputError, ConfigError
from scheduler.sandbox_values import Effect, SandboxOffer, SandboxRelease, SandboxSettings

BAD = """version: 1
sandbox:
  bad_releases:
    - {name: elementor, version: 3.2, effect: fatal}
    - name: akismet
      effect: explode
    - {name: x, effect: "slow:0.5"}
    - {version: "1.0", effect: blank}
  offers:
    - {name: "wp-*", version: "2.0", installed: "1.0"}
    - {name: y, version: "2.0", kind: widget, colour: red}
    - {name: z}
  seeded_updates: maybe
"""


def test_every_problem_names_its_line_and_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(BAD, "jobs.yaml", {})
    assert [str(p) for p in caught.value.problems] == [
        "jobs.yaml:4: sandbox.bad_releases.0.version: 3.2 is read as a number, not a version: "
        "write it in quotes",
        "jobs.yaml:6: sandbox.bad_releases.1.effect: unknown effect 'explode': use one of blank, "
        "fatal, path:/PATH, php-fatals, slow:FACTOR, changed",
        "jobs.yaml:7: sandbox.bad_releases.2.effect: slow:0.5: the factor is a number above 1, "
        "at most 100",
        "jobs.yaml:8: sandbox.bad_releases.3.name: Field required",
        "jobs.yaml:10: sandbox.offers.0: a plugin or theme to install is named exactly, not by a "
        "pattern",
        "jobs.yaml:11: sandbox.offers.1.kind: Input should be 'plugin' or 'theme'",
        "jobs.yaml:11: sandbox.offers.1.colour: unknown key",
        "jobs.yaml:12: sandbox.offers.2.version: Field required",
        "jobs.yaml:13: sandbox.seeded_updates: Input should be a valid boolean, unable to "
        "interpret input",
    ]


def test_the_settings_become_frozen_values() -> None:
    text = """version: 1
sandbox:
  seeded_updates: false
  bad_releases:
    - {name: elementor, version: "3.2.1", effect: " path:/shop/ "}
    - {name: akismet, version: "*", effect: "slow:5.0"}
    - {name: redirection, effect: php-fatals}
  offers:
    - {name: elementor, version: "3.2.1"}
    - {name: astra, version: null, sites: [acme-*], environment: staging, kind: theme}
"""
    settings = parse(text, "jobs.yaml", {}).sandbox
    assert settings == SandboxSettings(
        seeded_updates=False,
        bad_releases=(
            SandboxRelease("elementor", "3.2.1", "path:/shop/"),
            SandboxRelease("akismet", None, "slow:5"),
            SandboxRelease("redirection", None, "php-fatals"),
        ),
        offers=(
            SandboxOffer("elementor", "3.2.1"),
            SandboxOffer("astra", None, ("acme-*",), "staging", None, "theme"),
        ),
    )
    assert parse("version: 1\n", "jobs.yaml", {}).sandbox == SandboxSettings()


@pytest.mark.parametrize(
    ("text", "effect"),
    [
        ("fatal", Effect("fatal")),
        ("blank", Effect("blank")),
        ("php-fatals", Effect("php-fatals")),
        ("changed", Effect("changed")),
        ("path:/shop/", Effect("path", path="/shop/")),
        ("slow:2.5", Effect("slow", factor=2.5)),
    ],
)
def test_effects_read_back_as_written(text: str, effect: Effect) -> None:
    assert Effect.parse(text) == effect and str(effect) == text


def test_a_path_effect_breaks_its_path_whatever_the_slash_or_query() -> None:
    shop = Effect.parse("path:/shop")
    assert shop.breaks("/shop/") and shop.breaks("/shop?page=2") and not shop.breaks("/")
    assert not shop.breaks("/shop/cart/")
    assert Effect.parse("fatal").breaks("/anything")
    assert not Effect.parse("slow:3").breaks("/")


def test_the_standalone_sandbox_takes_bad_releases() -> None:
    assert _parse_release("elementor@3.2.1:fatal") == SandboxRelease("elementor", "3.2.1", "fatal")
    assert _parse_release("akismet:slow:5") == SandboxRelease("akismet", None, "slow:5")
    assert _parse_release("woo@8.1:path:/shop/") == SandboxRelease("woo", "8.1", "path:/shop/")
    for value, problem in (
        ("elementor@:fatal", "use NAME[@VERSION]:EFFECT"),
        (":fatal", "use NAME[@VERSION]:EFFECT"),
        ("elementor", "unknown effect ''"),
        ("x@1:boom", "unknown effect 'boom'"),
    ):
        with pytest.raises(BadInputError) as caught:
            _parse_release(value)
        assert str(caught.value).startswith(f"--bad-release {value!r}: {problem}")
