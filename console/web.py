"""The console in a browser (``wgops console --web``): the same app, served by textual-serve,
behind an access token.

- **The token**: given in ``WGOPS_WEB_TOKEN`` or made at start and printed once (never
  logged: the access log is off). Every request needs it: ``?token=`` once (checked with
  :func:`hmac.compare_digest`), answered with a redirect that drops it from the address and
  sets an ``HttpOnly``, ``SameSite=Strict`` cookie holding a value derived from the token;
  the cookie from then on. Anything else gets HTTP 401 and nothing more: no page, no static
  file, no websocket.
- **One app process per browser tab**: textual-serve starts ``wgops console`` (with
  ``--readonly`` when asked) for each websocket, with its own broker and database
  connections; when the tab closes, the app is asked to quit and, if it has not within a few
  seconds, terminated by PID. Stopping the server stops every app it started.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import shlex
import socket
import sys
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from wgops.daemon.probes import listen_error
from wgops.store.config import Settings
from wgops.store.errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_ENV = "WGOPS_WEB_TOKEN"
COOKIE = "wgops_web"
MIN_TOKEN = 16              # characters of a token given in the environment
APP_STOP = 5.0              # seconds a closed tab's app has to quit before it is terminated
REFUSED = "401 Unauthorized: open the address with ?token= that `wgops console --web` printed\n"


def make_token(env: dict[str, str] | None = None) -> tuple[str, bool]:
    """(token, whether it was made here) from ``WGOPS_WEB_TOKEN`` or new."""
    given = (os.environ if env is None else env).get(TOKEN_ENV)
    if given is None:
        return secrets.token_urlsafe(24), True
    if len(given) < MIN_TOKEN or given != given.strip():
        raise ConfigError(f"{TOKEN_ENV} must be at least {MIN_TOKEN} characters, without "
                          "surrounding spaces")
    return given, False


class TokenGate:
    """Decides each request: the token once, then the cookie derived from it."""

    def __init__(self, token: str):
        self._token = token.encode()
        self.cookie_value = hmac.new(self._token, b"wgops console --web cookie",
                                     hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def cookie_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(),
                                                         self.cookie_value.encode())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not self.token_ok(given):
                return self.refuse()
            query = {k: v for k, v in request.query.items() if k != "token"}
            reply = web.Response(status=302, headers={
                "Location": str(request.rel_url.with_query(query))})
            reply.set_cookie(COOKIE, self.cookie_value, httponly=True, samesite="Strict",
                             path="/")
            reply.headers["Cache-Control"] = "no-store"
            return reply
        if not self.cookie_ok(request.cookies.get(COOKIE)):
            return self.refuse()
        return await handler(request)

    @staticmethod
    def refuse() -> web.Response:
        return web.Response(status=401, text=REFUSED, headers={"Cache-Control": "no-store"})


class AppProcess(AppService):
    """One tab's console process: without the token in its environment, and gone for sure
    when the tab is."""

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        env = super()._build_environment(width, height)
        env.pop(TOKEN_ENV, None)
        return env

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(super().stop(), APP_STOP)
        except (TimeoutError, ConnectionError, RuntimeError):
            logger.warning("console app %s did not quit in %.0fs; terminating it", self.pid,
                           APP_STOP)
        await self.terminate()

    async def terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), APP_STOP)
        except TimeoutError:
            process.kill()
            await process.wait()


class WebConsole(Server):
    """textual-serve's server with the token gate, per-tab processes that never outlive their
    tab, addresses taken from each request, and no access log."""

    def __init__(self, command: str, gate: TokenGate, title: str = "wgops console"):
        super().__init__(command, title=title)
        self.gate = gate
        self.apps: set[AppProcess] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.gate.middleware)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """(textual-serve prints a banner here; the CLI prints the address instead)."""

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(a.terminate() for a in list(self.apps)))

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, with the websocket and static addresses of the host the browser used."""
        router = request.app.router
        base = f"{request.scheme}://{request.host}"
        ws = ("wss" if request.scheme == "https" else "ws") + f"://{request.host}"
        static = base + str(router["static"].url_for(filename="/")).rstrip("/") + "/"
        return {"font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws + str(router["websocket"].url_for()),
                "config": {"static": {"url": static}}, "application": {"name": self.title}}

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: its own console process, stopped when the tab goes."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: AppProcess | None = None
        try:
            await websocket.prepare(request)
            service = AppProcess(self.command, write_bytes=websocket.send_bytes,
                                 write_str=websocket.send_str, close=websocket.close,
                                 download_manager=self.download_manager)
            self.apps.add(service)
            await service.start(width, height)
            logger.info("tab opened: console pid %s", service.pid)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:  # noqa: BLE001 - loop boundary: one tab's failure is logged
            logger.exception("web console tab")
        finally:
            if service is not None:
                await service.stop()
                self.apps.discard(service)
                logger.info("tab closed: console pid %s stopped", service.pid)
        return websocket


def console_command(settings: Settings, readonly: bool) -> str:
    """The command textual-serve runs for each tab (``exec``: the shell becomes the app)."""
    args = [sys.executable, "-m", "wgops", "--home", str(settings.home), "console"]
    if readonly:
        args.append("--readonly")
    return "exec " + shlex.join(args)


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound now: a port in use is a one-line error naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise listen_error(host, port, exc) from None
    sock.listen(128)
    return sock


def serve(settings: Settings, sock: socket.socket, token: str, readonly: bool) -> None:
    """Serve until SIGINT/SIGTERM; every tab's app is stopped before this returns."""
    server = WebConsole(console_command(settings, readonly), TokenGate(token))
    web.run_app(server._make_app(), sock=sock, access_log=None, print=None,
                shutdown_timeout=APP_STOP, handle_signals=True)


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/"


__all__ = ["TOKEN_ENV", "TokenGate", "WebConsole", "address", "listen", "make_token", "serve"]
