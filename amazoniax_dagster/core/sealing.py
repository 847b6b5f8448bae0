"""Secrets at rest: secret-named fields of a channel config are sealed with Fernet before they
are stored, and unsealed only inside the run that needs them.

A sealed value is ``{"$sealed": "<fernet token>"}``; the token hides the whole original value
(a string, or a mapping such as ``login_credentials``). Which fields are secret is decided by
``redaction.is_secret_key`` so that logging and storage agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.redaction import is_secret_key

SEALED = "$sealed"


class SecretCipher:
    """Fernet with the deployment's key (``AMAZONIAX_SECRET_KEY``)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "AMAZONIAX_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
                "make one with `amazoniax secret-key`"
            ) from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``config`` with every secret-named field sealed (recursively)."""
        return {k: self._seal_value(k, v) for k, v in config.items()}

    def unseal(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._unseal_value(v) for k, v in config.items()}

    def _seal_value(self, key: str, value: Any) -> Any:
        if value is None or _is_sealed(value):
            return value
        if is_secret_key(key):
            token = self._fernet.encrypt(json.dumps(value).encode()).decode()
            return {SEALED: token}
        if isinstance(value, Mapping):
            return self.seal(value)
        return value

    def _unseal_value(self, value: Any) -> Any:
        if _is_sealed(value):
            try:
                return json.loads(self._fernet.decrypt(value[SEALED].encode()))
            except InvalidToken as exc:
                raise ConfigError(
                    "a stored secret cannot be decrypted with AMAZONIAX_SECRET_KEY "
                    "(was the key changed?)"
                ) from exc
        if isinstance(value, Mapping):
            return self.unseal(value)
        return value


def _is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {SEALED}
