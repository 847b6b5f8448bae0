"""Fetcher names: one rule for the Git folder, the branch of a candidate and the DB's
fetcher_name."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from amazoniax_dagster.core.errors import ConfigError

#: The entry file of each kind; exactly one of them is in every version folder.
ENTRY_FILES: dict[str, str] = {
    "recipe": "recipe.yaml",
    "browser": "browser.yaml",
    "python": "fetcher.py",
}


KINDS = tuple(ENTRY_FILES)


PROVENANCE_FILE = "provenance.json"


CANDIDATE_PREFIX = "candidates/"


_MAX_SLUG = 200  # folder and branch names stay well below the usual 255-byte limit


_NAME = re.compile(r"^(?P<slug>[a-z0-9][a-z0-9_-]*)_fetcher_v(?P<version>[1-9][0-9]*)$")


def site_slug(structure_id: str) -> str:
    """The site part of a fetcher name, safe as a folder and a branch name.

    Rule: lower-case; IDNA (punycode) for non-ASCII labels; ``-`` is kept; every run of other
    characters outside ``[a-z0-9]`` becomes one ``_``; leading/trailing ``_`` are dropped. A slug
    longer than 200 characters is cut and ends with 8 hex digits of the site's SHA-256, so it
    stays unique. ``amazon.co.uk`` -> ``amazon_co_uk``, ``127.0.0.1:8080`` -> ``127_0_0_1_8080``.
    Distinct sites could still meet (``a-b.com`` never does, ``a_b.com`` might): the DB's unique
    ``fetcher_name`` refuses the second one.
    """
    text = structure_id.strip().lower()
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # not a host name IDNA accepts (a port, brackets): the rule below still applies
    slug = re.sub(r"[^a-z0-9-]+", "_", text).strip("_-")
    if not slug:
        raise ConfigError(f"site {structure_id!r} has no letters or digits to name a fetcher by")
    if len(slug) > _MAX_SLUG:
        digest = hashlib.sha256(structure_id.encode()).hexdigest()[:8]
        slug = f"{slug[: _MAX_SLUG - 9].rstrip('_-')}_{digest}"
    return slug


def fetcher_name(structure_id: str, version: int) -> str:
    """``<site_slug>_fetcher_v<version>``: the folder, and ``fetcher_details.fetcher_name``."""
    if version < 1:
        raise ValueError(f"fetcher versions start at 1, not {version}")
    return f"{site_slug(structure_id)}_fetcher_v{version}"


def parse_fetcher_name(name: str) -> tuple[str, int]:
    """(slug, version) of a fetcher name; ValueError for anything else (e.g. ``../x``)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a fetcher name (<site>_fetcher_v<N>)")
    return match["slug"], int(match["version"])


def candidate_branch(name: str) -> str:
    parse_fetcher_name(name)
    return f"{CANDIDATE_PREFIX}{name}"


def entry_kind(names: Collection[str]) -> str:
    """The kind named by the one entry file among ``names``; ValueError for none or several."""
    kinds = [kind for kind, entry in ENTRY_FILES.items() if entry in names]
    if len(kinds) != 1:
        wanted = ", ".join(ENTRY_FILES.values())
        raise ValueError(f"a fetcher version needs exactly one of {wanted}; found {len(kinds)}")
    return kinds[0]
