"""``wgops console --web`` in a real browser: Debian's headless Chromium driven by Selenium
(``/usr/bin/chromedriver``), against a real installation (broker, database, scheduler and
worker processes).

What the page shows is read from the bytes the app sends down its websocket (the terminal is
drawn on a canvas): a script added before the page loads keeps them for the test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cluster import Cluster, wait_for
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(180)

TOKEN = "test-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1400,900"]
# keeps what the app sends down the websocket, as text, in window.__wgops_seen
RECORD_WEBSOCKET = """
window.__wgops_seen = "";
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new Native(...args);
  const decoder = new TextDecoder();
  ws.addEventListener("message", (event) => {
    if (typeof event.data === "string") { window.__wgops_seen += event.data; }
    else if (event.data instanceof ArrayBuffer) {
      window.__wgops_seen += decoder.decode(event.data, {stream: true});
    } else if (event.data instanceof Blob) {
      event.data.text().then((t) => { window.__wgops_seen += t; });
    }
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, Native);
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class WebServer:
    def __init__(self, env: dict[str, str], tmp: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "web.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wgops", "console", "--web", "--port", str(self.port),
                 *args], env={**env, "WGOPS_WEB_TOKEN": TOKEN}, stdout=out,
                stderr=subprocess.STDOUT, cwd=str(ROOT))
        self.seen: set[psutil.Process] = set()

    def wait_up(self) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return get(self.url)[0] == 401
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_for(answers, 30, 0.1, "the web console to answer")

    def apps(self) -> list[psutil.Process]:
        """The console processes the server runs now (one per open tab)."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        self.seen.update(children)
        return [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    def stop(self) -> None:
        self.apps()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        left = [p for p in self.seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for proc in left:
            proc.kill()
        assert not left, f"console processes left: {[p.pid for p in left]}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (scripts/ensure-browser.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                           {"source": RECORD_WEBSOCKET})
    try:
        yield driver
    finally:
        driver.quit()


def seen(driver: Any) -> str:
    return str(driver.execute_script("return window.__wgops_seen || ''"))


def press(driver: Any, keys: str, then: str | None = None) -> None:
    """Type ``keys``; with ``then``, wait until the app has drawn that text since."""
    from selenium.webdriver.common.by import By

    before = len(seen(driver))
    driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys(keys)
    if then is not None:
        wait_for(lambda: then in seen(driver)[before:], 30, 0.2, f"{then!r} after {keys!r}")


def test_console_in_a_browser(cluster: Cluster, browser: Any, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    gid = cluster.submit({"name": "webgraph", "tasks": {
        "long": {"run": "tests.tasks:sleep", "args": {"seconds": 60}},
        "after": {"run": "tests.tasks:noop", "after": ["long"]}}})
    wait_for(lambda: cluster.tasks(gid)["long"]["state"] == "running", 30, 0.1, "long to run")
    server = WebServer(cluster.env, tmp_path)
    try:
        server.wait_up()
        _refused_without_the_token(server, browser)
        _drive(server, browser, cluster, gid, tmp_path)
    finally:
        server.stop()
    assert TOKEN not in server.log.read_text()


def _refused_without_the_token(server: WebServer, browser: Any) -> None:
    for path in ("", "ws", "static/js/textual.js", f"?token={TOKEN}x"):
        status, body = get(server.url + path)
        assert status == 401 and body.startswith("401 Unauthorized"), (path, status, body)
    browser.get(server.url)
    assert "401 Unauthorized" in browser.page_source
    assert "xterm" not in browser.page_source
    assert not server.apps()


def _drive(server: WebServer, browser: Any, cluster: Cluster, gid: int, tmp_path: Path) -> None:
    browser.get(f"{server.url}?token={TOKEN}")
    assert "token=" not in browser.current_url           # the redirect dropped it
    cookie = browser.get_cookie("wgops_web")
    assert cookie and cookie["httpOnly"] and TOKEN not in cookie["value"]
    for word in ("Daemons", "Queues", "Slots", "Graphs", "webgraph"):
        wait_for(lambda w=word: w in seen(browser), 60, 0.2, f"{word!r} on the overview")
    assert len(server.apps()) == 1
    browser.save_screenshot(str(tmp_path / "overview.png"))     # for a person to look at

    from selenium.webdriver.common.keys import Keys

    press(browser, "e", then="filter events")               # the events screen, and back
    press(browser, Keys.ESCAPE, then="Graphs")              # (a key right after esc: alt+key)
    press(browser, "p")                                     # pause the highlighted graph
    wait_for(lambda: cluster.show(gid)["state"] == "paused", 30, 0.2, "the graph to pause")
    out = cluster.cli("graph", "show", str(gid), "--json")
    assert json.loads(out.stdout)["state"] == "paused"

    first = browser.current_window_handle                   # a second tab: its own console
    browser.switch_to.new_window("tab")
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                            {"source": RECORD_WEBSOCKET})
    browser.get(server.url)
    wait_for(lambda: "webgraph" in seen(browser), 60, 0.2, "the second tab's overview")
    wait_for(lambda: len(server.apps()) == 2, 30, 0.2, "two console processes")
    pids = {p.pid for p in server.apps()}
    browser.close()                                          # closing a tab stops its console
    browser.switch_to.window(first)
    wait_for(lambda: len(server.apps()) == 1, 30, 0.2, "the closed tab's console to stop")
    browser.switch_to.new_window("tab")                      # and the first one
    browser.switch_to.window(first)
    browser.close()
    wait_for(lambda: not server.apps(), 30, 0.2, "no console process left")
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status()
                != psutil.STATUS_ZOMBIE]


# -- the gate and the command, in process ----------------------------------------------------


async def test_every_request_needs_the_token_then_the_cookie(tmp_path: Path) -> None:
    from aiohttp import DummyCookieJar
    from aiohttp.test_utils import TestClient, TestServer

    from wgops.console.web import COOKIE, TokenGate, WebConsole

    server = WebConsole("exec true", TokenGate(TOKEN))
    async with TestClient(TestServer(await server._make_app()),
                          cookie_jar=DummyCookieJar()) as client:
        for path in ("/", "/ws", "/static/js/textual.js", "/download/x", "/nothing",
                     "/?token=wrong", f"/?token={TOKEN[:-1]}"):
            reply = await client.get(path, allow_redirects=False)
            assert reply.status == 401, path
            assert (await reply.text()).startswith("401 Unauthorized")
        reply = await client.get(f"/?token={TOKEN}&fontsize=14", allow_redirects=False)
        assert reply.status == 302 and reply.headers["Location"] == "/?fontsize=14"
        assert "HttpOnly" in reply.headers["Set-Cookie"]
        assert "SameSite=Strict" in reply.headers["Set-Cookie"]
        value = reply.cookies[COOKIE].value
        assert TOKEN not in value
        page = await client.get("/", headers={"Cookie": f"{COOKIE}={value}"})
        assert page.status == 200
        text = await page.text()
        assert f"ws://{client.host}:{client.port}/ws" in text
        static = await client.get("/static/js/textual.js",
                                  headers={"Cookie": f"{COOKIE}={value}"})
        assert static.status == 200
        forged = await client.get("/", headers={"Cookie": f"{COOKIE}={value[:-1]}0"})
        assert forged.status == 401


def test_each_tab_runs_the_console_without_the_token(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from textual_serve.download_manager import DownloadManager

    from wgops.console.web import TOKEN_ENV, AppProcess, console_command, make_token
    from wgops.store.config import Settings

    settings = Settings(home=tmp_path / "h")
    assert console_command(settings, readonly=True).endswith(
        f"-m wgops --home {tmp_path / 'h'} console --readonly")
    assert "--readonly" not in console_command(settings, readonly=False)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert make_token() == (TOKEN, False)

    async def nothing(*_: Any) -> None:
        return None
    app = AppProcess("true", write_bytes=nothing, write_str=nothing, close=nothing,
                     download_manager=DownloadManager())
    env = app._build_environment(100, 30)
    assert TOKEN_ENV not in env and env["COLUMNS"] == "100"
    monkeypatch.setenv(TOKEN_ENV, "short")
    from wgops.store.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        make_token()
    monkeypatch.delenv(TOKEN_ENV)
    token, made = make_token()
    assert made and len(token) >= 30


def test_web_port_in_use_exits_2(wgops_env: dict[str, str]) -> None:
    from tests.conftest import wgops

    wgops("init", env=wgops_env, check=True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = wgops("console", "--web", "--port", str(port), env=wgops_env, timeout=30)
    assert proc.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert "Traceback" not in proc.stderr
