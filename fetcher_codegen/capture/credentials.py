"""The channel's login credentials and auth keys as the capture needs them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from amazoniax_dagster.core.messages import WebSourceConfig

if TYPE_CHECKING:
    from playwright.sync_api import HttpCredentials

USERNAME_KEYS = ("username", "user", "email", "login")
PASSWORD_KEYS = ("password", "pass", "passwd")


def secret_values(config: WebSourceConfig) -> list[str]:
    found = {**(config.login_credentials or {}), **(config.auth_keys or {})}
    return [value.get_secret_value() for value in found.values() if value.get_secret_value()]


def credential(config: WebSourceConfig, keys: tuple[str, ...]) -> str | None:
    creds = config.login_credentials or {}
    return next((creds[k].get_secret_value() for k in keys if k in creds), None)


def http_credentials(config: WebSourceConfig) -> HttpCredentials | None:
    user, password = credential(config, USERNAME_KEYS), credential(config, PASSWORD_KEYS)
    if user is None or password is None:
        return None
    parts = urlsplit(config.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    # Sent only after a 401 Basic challenge from the channel's own origin.
    return {"username": user, "password": password, "origin": origin}
