"""Debian's Chromium driven by playwright-python (never `playwright install`): shared by the
screenshot script and the browser tests."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager, suppress

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def ensure_chromium() -> str:
    """Path of Debian's chromium, installing the package with apt-get when it is missing."""
    if not shutil.which("chromium"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True)
    return shutil.which("chromium") or CHROMIUM


@contextmanager
def browser_page(width: int = 1400, height: int = 900):
    """A fresh headless Chromium page; left as a person leaves it (its `beforeunload` runs, so a Voila app's kernel
    is shut down) unless it was closed already."""
    from playwright.sync_api import Error, sync_playwright

    path = ensure_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
            if not page.is_closed():
                with suppress(Error):  # (closed meanwhile)
                    page.goto("about:blank")
                    page.wait_for_timeout(300)  # the shutdown beacon leaves before the browser closes
        finally:
            browser.close()
