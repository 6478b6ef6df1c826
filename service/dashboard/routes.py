"""`GET /dashboard` and its endpoints, behind BCWEBHOOKS_DASHBOARD_TOKEN.

The browser logs in once, with `/dashboard?token=...` (a link to hand out) or the login form's POST, and
gets an HttpOnly, SameSite=Strict cookie that holds a digest of the token, never the token itself; scripts
may send `Authorization: Bearer <token>` instead. A wrong or missing token gets 401. The page is
server-rendered; its script fetches the panels (server-rendered too) every few seconds and draws the chart.
A replay asks the workers to replay (service/deadletters.py); the page shows the result at its next refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import parse_qs

import redis
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from service.dashboard.state import read_state
from service.deadletters import request_replay

HERE = Path(__file__).parent
COOKIE_NAME = "bcwebhooks_dashboard"
REFRESH_SECONDS = 2
MAX_REPLAY_IDS = 1000
MAX_FORM_BYTES = 4096

log = structlog.get_logger("bcwebhooks.dashboard")


class Dashboard:
    """The dashboard's endpoints.

    Parameters:
      token: the dashboard token (never logged; the cookie holds a digest of it).
      client: a Redis client on the service's server (read in a thread, off the event loop).
      stream: the processed-events stream.
      stores: the stores whose API budget is shown; None: the stores that have the app installed (app mode).
    """

    def __init__(self, token: str, client: redis.Redis, stream: str, stores: list[str] | None) -> None:
        self._token = token.encode()
        self._session = hashlib.sha256(b"bcwebhooks-dashboard\0" + self._token).hexdigest()
        self.client = client
        self.stream = stream
        self.stores = stores
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    def routes(self) -> list[BaseRoute]:
        """The routes, all under /dashboard."""
        return [
            Route("/dashboard", self.page, methods=["GET"]),
            Route("/dashboard/login", self.login, methods=["POST"]),
            Route("/dashboard/panels", self.panels, methods=["GET"]),
            Route("/dashboard/api/state", self.state, methods=["GET"]),
            Route("/dashboard/api/replay", self.replay, methods=["POST"]),
            Mount("/dashboard/static", StaticFiles(directory=str(HERE / "static")), name="dashboard-static"),
        ]

    async def page(self, request: Request) -> Response:
        """The dashboard, or the login form (401); `?token=` logs in and drops the token from the URL."""
        given = request.query_params.get("token")
        if given is not None:
            return self._login_answer(request, given)
        if not self.authorized(request):
            return self._login_page(request, failed=False)
        state = await asyncio.to_thread(read_state, self.client, self.stream, self.stores)
        return self.templates.TemplateResponse(
            request, "dashboard.html", {"state": state, "refresh_seconds": REFRESH_SECONDS}
        )

    async def login(self, request: Request) -> Response:
        """The login form's POST (application/x-www-form-urlencoded `token`)."""
        body = await request.body()
        fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        return self._login_answer(request, (fields.get("token") or [""])[0])

    async def panels(self, request: Request) -> Response:
        """The panels alone, server-rendered, for the page's refresh."""
        if not self.authorized(request):
            return _unauthorized()
        state = await asyncio.to_thread(read_state, self.client, self.stream, self.stores)
        return self.templates.TemplateResponse(request, "panels.html", {"state": state})

    async def state(self, request: Request) -> Response:
        """The same data as JSON."""
        if not self.authorized(request):
            return _unauthorized()
        return JSONResponse(await asyncio.to_thread(read_state, self.client, self.stream, self.stores))

    async def replay(self, request: Request) -> Response:
        """Ask the workers to replay dead letters: a JSON body `{"ids": [...]}`; 202 once enqueued."""
        if not self.authorized(request):
            return _unauthorized()
        # A JSON body cannot come from a plain cross-site form; with SameSite=Strict, no forged replay.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "unsupported_media_type", "send the ids as application/json")
        try:
            ids = json.loads(await request.body())["ids"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_json", 'the body must be {"ids": ["<dead letter id>", ...]}')
        if not isinstance(ids, list) or not ids or len(ids) > MAX_REPLAY_IDS:
            return _error(400, "invalid_ids", f"ids must be a list of 1 to {MAX_REPLAY_IDS} ids")
        if not all(isinstance(item, str) and 0 < len(item) <= 200 for item in ids):
            return _error(400, "invalid_ids", "each id must be a dead letter id from the list")
        try:
            request_id = await asyncio.to_thread(request_replay, self.client, ids)
        except (redis.RedisError, OSError):
            return _error(503, "unavailable", "could not reach Redis; try again")
        log.info("dashboard.replay_requested", dead_letters=len(ids), request=request_id)
        return JSONResponse({"requested": len(ids), "request": request_id}, status_code=202)

    def authorized(self, request: Request) -> bool:
        """The session cookie or a bearer token matches."""
        cookie = request.cookies.get(COOKIE_NAME, "")
        if cookie and hmac.compare_digest(cookie.encode(), self._session.encode()):
            return True
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(bearer.strip().encode(), self._token)

    def _login_answer(self, request: Request, given: str) -> Response:
        if not hmac.compare_digest(given.encode(), self._token):
            log.warning("dashboard.login_refused")
            return self._login_page(request, failed=True)
        home = request.scope.get("root_path", "") + "/dashboard"
        response = RedirectResponse(home, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            self._session,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=home,
        )
        return response

    def _login_page(self, request: Request, failed: bool) -> Response:
        return self.templates.TemplateResponse(request, "login.html", {"failed": failed}, status_code=401)


def _unauthorized() -> Response:
    return _error(401, "unauthorized", "log in at /dashboard with the dashboard token")


def _error(status_code: int, code: str, message: str) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status_code)
