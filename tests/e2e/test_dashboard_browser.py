"""The dashboard in a real headless Chromium, against the real `serve` and `worker`: log in with the token,
watch events arrive, replay a dead letter and see it delivered. Writes a screenshot.

Set DASHBOARD_SCREENSHOT to a path to keep a copy of the screenshot (docs/dashboard.png comes from this).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from service.settings import DEFAULT_STREAM
from tests.browser import ensure_chromium, start_chromium
from tests.e2e.processes import BCWEBHOOKS, START_TIMEOUT_SECONDS, Process, ready
from tests.helpers import HEADER_SECRET, encode, envelope, signed
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "dashboard-token-5c1d"
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def chromium_ready() -> None:
    reason = ensure_chromium()
    if reason is not None:
        pytest.skip(f"NO BROWSER TEST: headless Chromium unavailable: {reason}")


@pytest.fixture
def browser(chromium_ready: None, tmp_path: Path) -> Iterator[WebDriver]:
    try:
        driver = start_chromium(tmp_path / "chromium-profile")
    except WebDriverException as error:
        pytest.fail(f"chromium is installed but did not start: {error.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def send_order(base: str, order_id: int = 104) -> None:
    raw = encode(envelope(data={"type": "order", "id": order_id}))
    headers = {**signed(raw, webhook_id=f"msg_{uuid.uuid4().hex}"), "X-Webhook-Secret": HEADER_SECRET}
    assert httpx.post(f"{base}/webhooks/bigcommerce", content=raw, headers=headers).status_code == 200


def legend(browser: WebDriver) -> str:
    return str(browser.find_element(By.ID, "legend").text)


def test_dashboard_shows_events_arriving_and_replays_a_dead_letter(
    browser: WebDriver,
    environ: dict[str, str],
    sandbox_url: str,
    started: list[Process],
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    port = free_port()
    env = {**environ, "BCWEBHOOKS_DASHBOARD_TOKEN": TOKEN, "BCWEBHOOKS_METRICS_PORT": "0"}
    started.append(Process([*BCWEBHOOKS, "serve", "--port", str(port)], env, tmp_path / "serve.log"))
    worker = Process([*BCWEBHOOKS, "worker", "--threads", "2"], env, tmp_path / "worker.log")
    started.append(worker)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: ready(f"{base}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready")
    wait = WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2)

    browser.get(f"{base}/dashboard")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    wait.until(lambda b: b.find_elements(By.ID, "login-error"))
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    wait.until(lambda b: b.find_elements(By.ID, "chart"))
    assert "token" not in browser.current_url
    cookie = browser.get_cookie("bcwebhooks_dashboard")
    assert cookie is not None and cookie["httpOnly"] and TOKEN not in cookie["value"]

    for _ in range(5):  # sent while the page is open: it must show them without a reload
        send_order(base)
    wait.until(lambda b: "order 5" in legend(b))
    assert browser.find_elements(By.CSS_SELECTOR, "#chart rect[data-family='order']")
    wait.until(lambda b: b.find_element(By.ID, "p50").text.isdigit())

    # The token lacks a scope for one call: the event is dead-lettered at once, with the reason.
    fault = {"status": 403, "count": 1, "path_prefix": "/v2/orders"}
    assert httpx.post(f"{sandbox_url}/_sandbox/faults", json=fault).status_code in (200, 201)
    send_order(base, order_id=105)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#dead-letters button.replay"))
    reason = browser.find_element(By.CSS_SELECTOR, "#dead-letters td.reason").text
    assert "store_v2_orders" in reason
    browser.save_screenshot(str(tmp_path / "dashboard-dead-letter.png"))

    browser.find_element(By.CSS_SELECTOR, "#dead-letters button.replay").click()
    wait.until(lambda b: not b.find_elements(By.CSS_SELECTOR, "#dead-letters button.replay"))
    wait.until(lambda b: "order 6" in legend(b))
    assert redis_client.xlen(DEFAULT_STREAM) == 6
    assert "dlq.replayed" in worker.output()

    screenshot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    keep = os.environ.get("DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)
