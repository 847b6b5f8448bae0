"""Auth strategies: one small class per ``auth.type``, fresh for every run.

:meth:`AuthStrategy.login` runs once before the first request of the run (render secrets,
post a login form, fetch a token); :meth:`AuthStrategy.apply` adds credentials to a request
bound for a trusted host; :meth:`AuthStrategy.refresh` runs after a 401 and says whether one
more try makes sense. Every credential the strategy learns is handed to the run's redactor.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urljoin

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.core.redaction import Redactor
from amazoniax_dagster.fetchers.recipe import jsonpath
from amazoniax_dagster.fetchers.recipe.http import (
    Page,
    PreparedRequest,
    SafeClient,
    UnexpectedStatusError,
)
from amazoniax_dagster.fetchers.recipe.schema import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    LoginFormAuth,
    TokenEndpointAuth,
)
from amazoniax_dagster.fetchers.recipe.selectors import login_form
from amazoniax_dagster.fetchers.recipe.templating import Scope, render

C = TypeVar("C")


class AuthSession(Protocol):
    """What a strategy uses of the run's session (``recipe/session.py`` ``Session``)."""

    redactor: Redactor
    client: SafeClient

    def scope(self, **variables: Any) -> Scope: ...

    def absolute(self, url: str) -> str: ...

    def trust(self, url: str) -> str: ...

    def send(self, request: PreparedRequest, *, authenticate: bool = True) -> Page: ...


class AuthStrategy(Generic[C]):
    def __init__(self, config: C) -> None:
        self.config = config

    def login(self, session: AuthSession) -> None:
        """Prepare credentials once per run."""

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        return request

    def refresh(self, session: AuthSession) -> bool:
        """After a 401: renew the credentials and return True to try once more."""
        return False


class NoAuth(AuthStrategy[None]):
    pass


class _HeaderAuth(AuthStrategy[C]):
    """Strategies that end up sending one header."""

    header_name = "Authorization"
    header_value = ""

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        return replace(request, headers={**request.headers, self.header_name: self.header_value})

    def _set(self, session: AuthSession, name: str, value: str, secret: str) -> None:
        session.redactor.add(secret, value)
        self.header_name, self.header_value = name, value


class BasicAuthStrategy(_HeaderAuth[BasicAuth]):
    def login(self, session: AuthSession) -> None:
        user = render(self.config.username, session.scope())
        password = render(self.config.password, session.scope())
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._set(session, "Authorization", f"Basic {token}", token)


class BearerAuthStrategy(_HeaderAuth[BearerAuth]):
    def login(self, session: AuthSession) -> None:
        token = render(self.config.token, session.scope())
        self._set(session, "Authorization", f"Bearer {token}", token)


class ApiKeyAuthStrategy(AuthStrategy[ApiKeyAuth]):
    value = ""

    def login(self, session: AuthSession) -> None:
        self.value = render(self.config.value, session.scope())
        session.redactor.add(self.value)

    def apply(self, request: PreparedRequest) -> PreparedRequest:
        if self.config.location == "query":
            return request.with_params(**{self.config.name: self.value})
        return replace(request, headers={**request.headers, self.config.name: self.value})


class LoginFormStrategy(AuthStrategy[LoginFormAuth]):
    """Log in like a person would; the session cookie then rides in the client's cookie jar."""

    def login(self, session: AuthSession) -> None:
        scope = session.scope()
        login_url = session.trust(session.absolute(render(self.config.login_url, scope)))
        page = session.send(PreparedRequest("GET", login_url), authenticate=False)
        form = login_form(page.text())
        if form is None:
            raise SiteChangedError(
                f"no login form (a form with a password field) at {page.shown_url}"
            )
        fields = {**form.fields, **{k: render(v, scope) for k, v in self.config.fields.items()}}
        session.redactor.add(*(render(v, scope) for v in self.config.fields.values()))
        if self.config.submit_url:
            target = session.absolute(render(self.config.submit_url, scope))
        else:
            target = urljoin(page.url, form.action or page.url)
        reply = session.send(
            PreparedRequest("POST", session.trust(target), form=fields), authenticate=False
        )
        shown = session.client.shown(target)
        if login_form(reply.text()) is not None:
            raise ConfigError(
                f"credentials were refused: the login form came back after POST {shown}"
            )
        marker = self.config.failure_marker
        if marker and re.search(marker, reply.text()):
            raise ConfigError(
                f"credentials were refused: the reply to POST {shown} has the failure marker"
            )


class TokenEndpointStrategy(_HeaderAuth[TokenEndpointAuth]):
    def login(self, session: AuthSession) -> None:
        config, scope = self.config, session.scope()
        url = session.trust(session.absolute(render(config.token_url, scope)))
        body = {name: render(value, scope) for name, value in config.body.items()}
        session.redactor.add(*body.values())
        request = PreparedRequest(
            "POST",
            url,
            headers={"Accept": "application/json"},
            json=body if config.body_format == "json" else None,
            form=body if config.body_format == "form" else None,
        )
        try:
            reply = session.send(request, authenticate=False)
        except UnexpectedStatusError as exc:
            if exc.status != 400:
                raise
            raise ConfigError(f"credentials were refused by the token endpoint: {exc}") from exc
        token = jsonpath.find(reply.json(), config.token_path)
        if not isinstance(token, str) or not token:
            raise SiteChangedError(
                f"the token endpoint {reply.shown_url} sent no token at {config.token_path!r}"
            )
        self._set(session, config.header, f"{config.scheme} {token}".strip(), token)

    def refresh(self, session: AuthSession) -> bool:
        self.login(session)
        return True


AUTH_TYPES: Mapping[str, type[AuthStrategy[Any]]] = {
    "basic": BasicAuthStrategy,
    "bearer": BearerAuthStrategy,
    "api_key": ApiKeyAuthStrategy,
    "login_form": LoginFormStrategy,
    "token_endpoint": TokenEndpointStrategy,
}


def make_auth(config: AuthConfig | None) -> AuthStrategy[Any]:
    """A fresh strategy for one run (NoAuth without ``auth``)."""
    if config is None:
        return NoAuth(None)
    if config.type not in AUTH_TYPES:
        known = ", ".join(sorted(AUTH_TYPES))
        raise ConfigError(f"unknown auth type {config.type!r}; known: {known}")
    return AUTH_TYPES[config.type](config)


__all__ = [
    "AUTH_TYPES",
    "ApiKeyAuthStrategy",
    "AuthStrategy",
    "BasicAuthStrategy",
    "BearerAuthStrategy",
    "LoginFormStrategy",
    "NoAuth",
    "TokenEndpointStrategy",
    "make_auth",
]
