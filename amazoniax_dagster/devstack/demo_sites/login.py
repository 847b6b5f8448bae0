"""Form login with a CSRF token and a session cookie, as most web apps do it.

``GET /login`` shows a form with a hidden ``csrf_token`` input; ``POST /login`` with
``username``, ``password`` and ``csrf_token`` (form-encoded) sets the session cookie and
redirects (303) to ``next``. A wrong password re-shows the form with an error (status
``failure_status``); a missing or unknown CSRF token is a 403. Pages behind the login redirect
(302) to ``/login?next=<path>``.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form body (python-multipart is not installed, and not needed for this)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


class FormLogin:
    """The login state of one site: issued CSRF tokens and open sessions."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        home: str,
        cookie_name: str = "sessionid",
        failure_status: int = 200,
    ) -> None:
        self.username = username
        self.password = password
        self.home = home
        self.cookie_name = cookie_name
        self.failure_status = failure_status
        self.csrf_tokens: set[str] = set()
        self.sessions: set[str] = set()

    def reset(self) -> None:
        self.csrf_tokens.clear()
        self.sessions.clear()

    def is_authenticated(self, request: Request) -> bool:
        return request.cookies.get(self.cookie_name) in self.sessions

    def redirect_to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=302)

    def form(self, request: Request, *, error: str | None = None, status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        self.csrf_tokens.add(token)
        next_path = _local_path(request.query_params.get("next")) or self.home
        alert = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
        body = (
            f"{alert}"
            f'<form method="post" action="/login?next={escape(quote(next_path, safe="/"))}">\n'
            f'<input type="hidden" name="csrf_token" value="{token}">\n'
            '<label>Username <input name="username" autocomplete="username"></label>\n'
            '<label>Password <input type="password" name="password"'
            ' autocomplete="current-password"></label>\n'
            '<button type="submit">Sign in</button>\n</form>'
        )
        return html_page("Sign in", body, status=status)

    async def submit(self, request: Request) -> Response:
        form = await read_form(request)
        if form.get("csrf_token") not in self.csrf_tokens:
            return html_page("Forbidden", "<p>CSRF verification failed.</p>", status=403)
        if form.get("username") != self.username or not secrets.compare_digest(
            form.get("password", "").encode(), self.password.encode()
        ):
            return self.form(
                request, error="Invalid username or password.", status=self.failure_status
            )
        session = secrets.token_urlsafe(32)
        self.sessions.add(session)
        next_path = _local_path(request.query_params.get("next")) or self.home
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(self.cookie_name, session, httponly=True, samesite="lax")
        return response

    async def endpoint(self, request: Request) -> Response:
        """The ``/login`` route: GET shows the form, POST signs in."""
        if request.method == "POST":
            return await self.submit(request)
        return self.form(request)

    async def logout(self, request: Request) -> Response:
        self.sessions.discard(request.cookies.get(self.cookie_name, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(self.cookie_name)
        return response


def _local_path(value: str | None) -> str | None:
    """``next`` only ever points inside the site (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value
