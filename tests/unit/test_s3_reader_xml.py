"""How the customer-bucket reader parses S3's XML replies: a reply that cannot declare an
entity is read as it is, one that declares or could hide a DTD is refused, in any encoding."""

import pytest

from amazoniax_dagster.clients.s3_reader import _parse_xml
from amazoniax_dagster.core.errors import TransientError

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    "<ListBucketResult><Name>&lol2;</Name></ListBucketResult>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<ListBucketResult><Name>&e;</Name></ListBucketResult>"
)


@pytest.mark.parametrize(
    "reply",
    [
        BOMB.encode(),
        EXTERNAL.encode(),
        b"<!-- a comment first -->" + BOMB.split("?>", 1)[1].encode(),
        BOMB.encode("utf-16"),  # with a BOM: no "<!" byte pair shows the DOCTYPE
        BOMB.replace('1.0"?>', '1.0" encoding="UTF-16BE"?>').encode("utf-16-be"),
        BOMB.encode("utf-32"),
        b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://169.254.169.254/x"><r/>',
    ],
    ids=["bomb", "external", "after-comment", "utf-16", "utf-16be", "utf-32", "system-dtd"],
)
def test_a_reply_with_a_dtd_is_refused_in_any_encoding(reply: bytes) -> None:
    with pytest.raises(TransientError, match="list: the server's reply is not valid XML"):
        _parse_xml(reply, "list")


def test_a_reply_without_a_dtd_is_read_with_its_escapes_and_encoding() -> None:
    plain = _parse_xml(
        b"<ListBucketResult><Contents><Key>a &amp; b &#233; &lt;c&gt;</Key></Contents>"
        b"<NextContinuationToken>t&amp;2</NextContinuationToken></ListBucketResult>",
        "list",
    )
    assert plain.findtext("Contents/Key") == "a & b \u00e9 <c>"
    assert plain.findtext("NextContinuationToken") == "t&2"
    latin = _parse_xml(
        '<?xml version="1.0" encoding="ISO-8859-1"?><ListBucketResult><Name>café</Name>'
        "</ListBucketResult>".encode("latin-1"),
        "list",
    )
    assert latin.findtext("Name") == "café"


@pytest.mark.parametrize(
    "reply",
    [b"<ListBucketResult><Name>x</Name>", b"not xml at all", b"", b"<a>&undeclared;</a>"],
    ids=["cut-short", "text", "empty", "undeclared-entity"],
)
def test_a_reply_that_is_not_xml_is_transient(reply: bytes) -> None:
    with pytest.raises(TransientError, match="not valid XML"):
        _parse_xml(reply, "list")
