"""What building a customer-bucket reader loads into a process: botocore's signer, not its
credential chain (the channel's keys are fixed)."""

import subprocess
import sys

import pytest

_CHILD = """
import sys
from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
S3Reader(ReaderSettings("http://127.0.0.1:1", {keys}, None)).close()
print("botocore.credentials" in sys.modules)
"""


@pytest.mark.parametrize("keys", ['"key", "secret"', "None, None"], ids=["signed", "anonymous"])
def test_a_reader_does_not_load_the_credential_chain(keys: str) -> None:
    code = _CHILD.format(keys=keys)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]
