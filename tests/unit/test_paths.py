import unicodedata

import pytest

from amazoniax_dagster.core.paths import (
    FilePattern,
    UnsafePathError,
    _glob,
    remote_prefix,
    safe_relative_path,
)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.csv", "a.csv", True),
        ("*.csv", "sub/a.csv", False),
        ("*.csv", "a.CSV", False),
        ("**/*.csv", "a.csv", True),
        ("**/*.csv", "x/y/a.csv", True),
        ("", "x/y/z.bin", True),
        (None, "z.bin", True),
        ("**", "x/y", True),
        ("2025-*/*.xml", "2025-01/a.xml", True),
        ("2025-*/*.xml", "2025-01/b/a.xml", False),
        ("{a,b}.txt", "b.txt", True),
        ("file_?.json", "file_1.json", True),
        ("file_?.json", "file_12.json", False),
        ("/data_*.csv", "data_1.csv", True),
        ("!*.tmp", "x.csv", True),
        ("!*.tmp", "x.tmp", False),
    ],
)
def test_pattern_semantics(pattern: str | None, path: str, matches: bool) -> None:
    assert FilePattern.parse(pattern).matches(path) is matches


@pytest.mark.parametrize(
    "path",
    ["a", ".a", "a/b", ".x/.y", "a b/c[1]", "{a}", "!x", "a//b", "a/", "ü/ß", "x\\y", "...",
     "a/.../b", "a/..b", "a/../b", "a/./b", "./a", ".", "..", "a/..", "../a"],
)  # fmt: skip
def test_everything_matches_what_wcmatch_matches_for_double_star(path: str) -> None:
    # "**" (and no pattern) is answered without wcmatch: the answer must be wcmatch's, with the
    # flags every other pattern is matched with.
    glob, flags = _glob()
    expected = glob.globmatch(path, "**", flags=flags)
    assert FilePattern.parse(None).matches(path) is expected
    assert FilePattern.parse("**").matches(path) is expected


@pytest.mark.parametrize(
    ("pattern", "recursive"), [("*.csv", False), ("**/*.csv", True), ("a/*.csv", True), ("", True)]
)
def test_only_deep_patterns_make_listings_recursive(pattern: str, recursive: bool) -> None:
    assert FilePattern.parse(pattern).recursive is recursive


@pytest.mark.parametrize(
    ("remote_path", "prefix"),
    [
        ("/data/files/", "data/files/"),
        ("data/files", "data/files/"),
        ("/", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_remote_prefix(remote_path: str | None, prefix: str) -> None:
    assert remote_prefix(remote_path) == prefix


@pytest.mark.parametrize(
    "name",
    ["a.csv", "dir/sub/a b.csv", "ünïcode/файл.txt", ".hidden", "x" * 1024, "€" * 341],
)
def test_safe_names_pass(name: str) -> None:
    assert safe_relative_path(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../escape.csv",
        "a/../../escape.csv",
        "a/./b",
        "/etc/passwd",
        "a//b",
        "a\\..\\b",
        "new\nline.csv",
        "nul\x00.csv",
        "bell\x07",
        "x" * 1100,
        "€" * 342,  # 1,026 bytes in 342 characters
        "bad\udcff.csv",  # an undecodable byte, kept by surrogateescape
        "a/..",
    ],
)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative_path(name)


def test_exactly_unicodes_control_characters_are_refused() -> None:
    # Category Cc has no code point above U+009F; the rest of this range must pass.
    for cp in range(0x800):
        name = f"a{chr(cp)}b.csv"
        if unicodedata.category(chr(cp)) == "Cc":
            with pytest.raises(UnsafePathError, match="control characters"):
                safe_relative_path(name)
        elif chr(cp) not in "/\\":
            assert safe_relative_path(name) == name
