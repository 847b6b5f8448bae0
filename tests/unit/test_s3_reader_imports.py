"""What building a customer-bucket reader loads into a process: botocore's signer and
urllib3, without urllib3's optional pyOpenSSL backend or botocore's credential chain, and
without hiding that backend from anything imported later."""

import subprocess
import sys

import pytest

# Runs in a fresh interpreter; {first} is what the process imported before the reader.
_CHILD = """
import ssl, sys
{first}
from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
S3Reader(ReaderSettings("http://127.0.0.1:1", {keys}, None)).close()
import botocore.httpsession
loaded = sorted(m for m in ("OpenSSL", "urllib3.contrib.pyopenssl", "botocore.credentials")
                if m in sys.modules)
print(loaded, botocore.httpsession.SSLContext is ssl.SSLContext)
import urllib3.contrib.pyopenssl  # still importable by anyone who wants it
print(sys.modules["urllib3.contrib.pyopenssl"] is not None)
"""


def _run(first: str, keys: str) -> list[str]:
    code = _CHILD.format(first=first, keys=keys)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("keys", ['"key", "secret"', "None, None"], ids=["signed", "anonymous"])
def test_a_reader_loads_neither_pyopenssl_nor_the_credential_chain(keys: str) -> None:
    assert _run("", keys) == ["[] True", "True"]


def test_a_process_that_loaded_pyopenssl_keeps_it() -> None:
    lines = _run("import urllib3.contrib.pyopenssl", '"key", "secret"')
    assert lines == ["['OpenSSL', 'urllib3.contrib.pyopenssl'] True", "True"]
