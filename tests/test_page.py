"""The page at GET /, in a real browser: the system's chromium, driven by Playwright."""
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from conftest import SERVED, unavailable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    unavailable("chromium (apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api")

INJECTION = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """The page, loaded and showing the model; `page.dialogs` collects any dialog it opens."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server}/")
    page.wait_for_function("document.getElementById('model').textContent.startsWith('model ')")
    yield page
    context.close()


def score(page, text: str, keys: str | None = None) -> None:
    """Type `text` and score it with the button, or with `keys` pressed in the text box."""
    page.fill("#texts", text)
    page.evaluate("document.getElementById('results').replaceChildren()")
    page.press("#texts", keys) if keys else page.click("#score")
    page.wait_for_selector(".result, #error:not(:empty)")


def shown(page) -> list[dict]:
    return page.eval_on_selector_all(".result", """cards => cards.map(card => ({
        text: card.querySelector('.text').textContent,
        label: card.querySelector('.label').textContent,
        prob: Number(card.querySelector('.bar').getAttribute('aria-valuenow')),
        tokens: [...card.querySelectorAll('.token')].map(t => ({
            token: t.textContent, effect: Number(t.dataset.effect), tabindex: t.getAttribute('tabindex'),
            aria: t.getAttribute('aria-label'), colour: getComputedStyle(t).backgroundColor})),
    }))""")


def test_shows_the_model_name_version_and_test_metrics(page, live_server):
    info = httpx.get(f"{live_server}/v1/model").json()
    line = page.text_content("#model")
    assert info["name"] in line and info["version"] in line
    assert f"accuracy {info['test_metrics']['accuracy']:.3f}" in line


def test_labels_and_probabilities_are_the_apis(page, live_server):
    texts = ["$SPY to the moon 🚀", "puts printing, crash incoming", "meh"]
    score(page, "\n".join(texts))
    predicted = httpx.post(f"{live_server}/v1/predict", json={"texts": texts}).json()["predictions"]
    assert [(r["text"], r["label"], r["prob"]) for r in shown(page)] == [
        (t, p["label"], p["prob_bullish"]) for t, p in zip(texts, predicted)]
    # Keyboard alone: Ctrl+Enter in the text box; pasted spreadsheet cells, tab-separated, count one each.
    score(page, "$AMD calls\t$INTC puts\r\n\n  bought more  ", keys="Control+Enter")
    texts = ["$AMD calls", "$INTC puts", "bought more"]
    predicted = httpx.post(f"{live_server}/v1/predict", json={"texts": texts}).json()["predictions"]
    assert [(r["text"], r["label"], r["prob"]) for r in shown(page)] == [
        (t, p["label"], p["prob_bullish"]) for t, p in zip(texts, predicted)]
    page.focus("#texts")  # then Tab: the button, and after it each word in turn
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "score"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "token"


def rgba(colour: str) -> tuple[float, ...]:
    parts = tuple(float(x) for x in re.findall(r"[\d.]+", colour))
    return parts if len(parts) == 4 else (*parts, 1.0)


def test_each_word_is_shaded_by_the_sign_of_its_effect(page, live_server):
    text = "$TSLA puts printing, this crash is just getting started, bulls are trapped lol"
    score(page, text)
    (card,) = shown(page)
    expected = httpx.post(f"{live_server}/v1/explain", json={"texts": [text]}).json()["explanations"][0]["tokens"]
    assert [(t["token"], t["effect"]) for t in card["tokens"]] == [(t["token"], t["effect"]) for t in expected]
    for token in card["tokens"]:
        red, green, _, alpha = rgba(token["colour"])
        assert (green > red) if token["effect"] > 0 else (red > green) if token["effect"] < 0 else alpha == 0, token
        assert token["tabindex"] == "0" and f"{token['effect']:+.3f}" in token["aria"]
    strongest = max(card["tokens"], key=lambda t: abs(t["effect"]))
    assert rgba(strongest["colour"])[3] == pytest.approx(0.7)
    first = card["tokens"][0]
    page.focus(".token")  # the message's first word: its effect is spelt out beside the words
    assert f"{first['effect']:+.3f}" in page.text_content(".why")


def test_api_errors_show_their_reason(page):
    most, chars = SERVED["max_explain_texts"], SERVED["max_chars"]
    score(page, "\n".join(f"message {i}" for i in range(most + 1)))
    alert = page.locator("[role=alert]")
    assert alert.text_content() == f"{most + 1} texts; at most {most} per request"
    assert page.locator(".result").count() == 0
    score(page, "x" * (chars + 1))
    assert alert.text_content() == f"a text of {chars + 1} characters; at most {chars}"
    score(page, "  \n\t ")
    assert alert.text_content().startswith("type a message")
    score(page, "fine again")
    assert alert.text_content() == "" and page.locator(".result").count() == 1


def test_messages_are_shown_as_text_never_run(page):
    score(page, f"{INJECTION}\n<b>bold</b> $SPY")
    assert [r["text"] for r in shown(page)] == [INJECTION, "<b>bold</b> $SPY"]
    assert page.locator("#results img, #results b").count() == 0
    page.wait_for_timeout(200)  # an image that failed to load would have fired onerror by now
    assert page.dialogs == []


def test_fits_wide_and_narrow_screens_light_and_dark(browser, live_server, tmp_path):
    long_word = "$" + "A" * 40 + "https://example.com/" + "x" * 120
    text = "\n".join(["$SPY to the moon 🚀 going way higher today", long_word, INJECTION])
    background = {}
    for scheme in ("light", "dark"):
        for width in (1280, 375):
            context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
            page = context.new_page()
            page.goto(f"{live_server}/")
            page.wait_for_function("document.getElementById('model').textContent.startsWith('model ')")
            score(page, text)
            assert page.locator(".result").count() == 3
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            background[scheme, width] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            for folder in filter(None, [tmp_path, os.environ.get("STOCKSENT_SCREENSHOTS")]):
                Path(folder).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=Path(folder) / f"page-{width}-{scheme}.png", full_page=True)
            context.close()
    assert background["light", 375] == background["light", 1280] != background["dark", 375]
    assert len(list(tmp_path.glob("page-*.png"))) == 4
