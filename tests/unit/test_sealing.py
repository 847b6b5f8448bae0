import json

import pytest

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.sealing import SEALED, SecretCipher

CONFIG = {
    "bucket": "b",
    "access_key": "AKIAEXAMPLE",
    "secret_access_key": "very-secret",
    "file_pattern": "*.csv",
    "login_credentials": {"username": "u", "password": "hunter22"},
    "auth_keys": {"api_key": "k-123456"},
    "nested": {"token": "tok-abcdef", "remote_path": "/x"},
}


def test_seal_hides_every_secret_and_round_trips() -> None:
    cipher = SecretCipher(SecretCipher.generate_key())
    sealed = cipher.seal(CONFIG)
    text = json.dumps(sealed)
    for secret in ("AKIAEXAMPLE", "very-secret", "hunter22", "k-123456", "tok-abcdef"):
        assert secret not in text
    assert sealed["bucket"] == "b" and sealed["file_pattern"] == "*.csv"
    assert sealed["nested"]["remote_path"] == "/x"
    assert set(sealed["secret_access_key"]) == {SEALED}
    assert cipher.unseal(sealed) == CONFIG
    assert cipher.seal(sealed) == sealed  # sealing twice does not double-encrypt


def test_wrong_key_is_a_clear_error() -> None:
    sealed = SecretCipher(SecretCipher.generate_key()).seal(CONFIG)
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        SecretCipher(SecretCipher.generate_key()).unseal(sealed)


def test_malformed_key_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        SecretCipher("short")
