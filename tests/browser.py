"""A real headless Chromium for the tests: Debian's `chromium` and `chromium-driver`, installed on first use
when apt-get can, driven by selenium through /usr/bin/chromedriver (no browser is ever downloaded)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT_SECONDS = 900
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def installed() -> bool:
    """Both the browser and its driver are there."""
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def ensure_chromium() -> str | None:
    """Install Debian's chromium and chromium-driver when missing and possible; None when ready, else why
    they cannot be had (the caller skips, saying so)."""
    if installed():
        return None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return f"{' and '.join(PACKAGES)} are missing and apt-get cannot install them here (needs root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *PACKAGES]):
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` did not finish within {INSTALL_TIMEOUT_SECONDS} s"
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {done.stderr.strip()[-500:]}"
    return None if installed() else f"apt-get installed {PACKAGES} but {CHROMIUM} is still missing"


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A headless Chromium with a new empty profile directory."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
