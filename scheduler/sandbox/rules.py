"""What Kinsta refuses, and says so with 400 and a message of its own: the sandbox refuses the same.

The spec's schemas are loose (a region, a PHP version and a domain are plain strings), so these
rules come from Kinsta's product, as of 2026:
- regions: the Google Cloud regions Kinsta hosts WordPress in, the list that
  GET /company/{id}/available-regions serves (same shape as the spec's example);
- PHP: Kinsta offers 8.0 to 8.4 (older versions are gone; 8.0 stays for sites that still need
  it), so a `modify-php-version` to 5.2 or 7.4 is refused;
- domains: a host name of letters, digits and hyphens in dot-separated labels (a leading `*.`
  for a wildcard), with an alphabetic top-level label;
- backups: at most five manual backups per environment; a sixth is refused until one is deleted;
- staging: one standard (non-premium) staging environment per site; more need premium staging.
"""

from __future__ import annotations

import re

SUPPORTED_PHP_VERSIONS = ("8.0", "8.1", "8.2", "8.3", "8.4")
MAX_MANUAL_BACKUPS = 5

# (name as Kinsta shows it, region)
REGIONS: tuple[tuple[str, str], ...] = (
    ("Iowa US (us-central1)", "us-central1"),
    ("South Carolina US (us-east1)", "us-east1"),
    ("Northern Virginia US (us-east4)", "us-east4"),
    ("Columbus US (us-east5)", "us-east5"),
    ("Dallas US (us-south1)", "us-south1"),
    ("Oregon US (us-west1)", "us-west1"),
    ("Los Angeles US (us-west2)", "us-west2"),
    ("Salt Lake City US (us-west3)", "us-west3"),
    ("Las Vegas US (us-west4)", "us-west4"),
    ("Montréal CA (northamerica-northeast1)", "northamerica-northeast1"),
    ("Toronto CA (northamerica-northeast2)", "northamerica-northeast2"),
    ("São Paulo BR (southamerica-east1)", "southamerica-east1"),
    ("Santiago CL (southamerica-west1)", "southamerica-west1"),
    ("St. Ghislain BE (europe-west1)", "europe-west1"),
    ("London UK (europe-west2)", "europe-west2"),
    ("Frankfurt DE (europe-west3)", "europe-west3"),
    ("Eemshaven NL (europe-west4)", "europe-west4"),
    ("Zurich CH (europe-west6)", "europe-west6"),
    ("Milan IT (europe-west8)", "europe-west8"),
    ("Paris FR (europe-west9)", "europe-west9"),
    ("Madrid ES (europe-southwest1)", "europe-southwest1"),
    ("Hamina FI (europe-north1)", "europe-north1"),
    ("Warsaw PL (europe-central2)", "europe-central2"),
    ("Tel Aviv IL (me-west1)", "me-west1"),
    ("Doha QA (me-central1)", "me-central1"),
    ("Johannesburg ZA (africa-south1)", "africa-south1"),
    ("Mumbai IN (asia-south1)", "asia-south1"),
    ("Delhi IN (asia-south2)", "asia-south2"),
    ("Changhua TW (asia-east1)", "asia-east1"),
    ("Hong Kong HK (asia-east2)", "asia-east2"),
    ("Tokyo JP (asia-northeast1)", "asia-northeast1"),
    ("Osaka JP (asia-northeast2)", "asia-northeast2"),
    ("Seoul KR (asia-northeast3)", "asia-northeast3"),
    ("Singapore SG (asia-southeast1)", "asia-southeast1"),
    ("Jakarta ID (asia-southeast2)", "asia-southeast2"),
    ("Sydney AU (australia-southeast1)", "australia-southeast1"),
    ("Melbourne AU (australia-southeast2)", "australia-southeast2"),
)
REGION_IDS = frozenset(region for _, region in REGIONS)

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TOP_LABEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
MAX_DOMAIN_CHARS = 253


def unknown_region(region: object) -> str | None:
    if region in REGION_IDS:
        return None
    return f"Invalid region: {region}. Use GET /company/{{id}}/available-regions for the list"


def unsupported_php(version: object) -> str | None:
    if version in SUPPORTED_PHP_VERSIONS:
        return None
    return f"PHP version {version} is not supported; supported versions: " + ", ".join(
        SUPPORTED_PHP_VERSIONS
    )


def invalid_domain(name: str) -> str | None:
    host = name.lower().removeprefix("*.")
    labels = host.split(".")
    valid = (
        len(name) <= MAX_DOMAIN_CHARS
        and len(labels) >= 2  # a name and a top-level domain
        and all(_LABEL.fullmatch(label) for label in labels)
        and _TOP_LABEL.fullmatch(labels[-1]) is not None
    )
    return None if valid else f"Invalid domain name: {name}"


def too_many_backups(existing: int) -> str | None:
    if existing < MAX_MANUAL_BACKUPS:
        return None
    return (
        f"This environment already has {MAX_MANUAL_BACKUPS} manual backups, the most Kinsta "
        "keeps; delete one before adding another"
    )


STANDARD_STAGING_TAKEN = (
    "This site already has a standard staging environment; add a premium staging environment "
    "instead"
)
