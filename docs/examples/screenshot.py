"""Redraw docs/page.png: serve a model, type three messages into the page in headless chromium,
press Ctrl+Enter and save the page (needs the system's chromium and the test extra's playwright).

    python docs/examples/screenshot.py runs/seeds-plain/seed-1 docs/page.png
"""
import shutil
import subprocess
import sys
import time

import httpx
from playwright.sync_api import sync_playwright

MESSAGES = "\n".join(["$SPY buy the dip 🚀 calls are cheap", "puts printing, this is going to crash",
                      "$AAPL earnings beat, but guidance weak"])


def main(model: str, out: str, port: int = 8765) -> None:
    server = subprocess.Popen([sys.executable, "-m", "stocksent.cli", "serve", model, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(f"{url}/")
            page.wait_for_function("document.getElementById('model').textContent.startsWith('model ')")
            page.fill("textarea", MESSAGES)
            page.keyboard.press("Control+Enter")
            page.wait_for_selector(".token")
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main(*sys.argv[1:3])
