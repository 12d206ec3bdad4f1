"""The console's DOM contract as the browser tests use it (/tmp/briefs/contract.md, "DOM
contract"): selectors, signing in, the visible-text audit, screenshots, a forging site."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.conftest import REPO

STATIC = REPO / "dashboard_api" / "console" / "static"
ARTIFACTS = REPO / "artifacts" / "console"  # gitignored; screenshots for people to look at

TOKEN = "#token"
SIGN_IN = "button[data-testid=sign-in]"
SIGN_IN_ERROR = "[data-testid=sign-in-error]"
USER = "[data-testid=user]"
SIGN_OUT = "button[data-testid=sign-out]"
LANG = "select[data-testid=lang]"
BANNER = "[data-testid=connection-banner]"
DISPATCH_VIEW = "[data-testid=view-dispatch]"
DISPATCH_TAB = "a[data-view=dispatch]"
ALERT_LIST = "[data-testid=alert-list]"
ALERT = "article[data-testid=alert]"
ACTION = "button[data-action]"
DISPATCH_DIALOG = "dialog[data-testid=dispatch-dialog]"
STATION = "input[name=station]"
CONFIRM_DISPATCH = "button[data-testid=confirm-dispatch]"
RESOLVE_DIALOG = "dialog[data-testid=resolve-dialog]"
OUTCOME = "select[name=outcome]"
CONFIRM_RESOLVE = "button[data-testid=confirm-resolve]"
FLASHING = re.compile(r"(^|\s)flashing(\s|$)")
# The haze strip on the dispatch view: data-haze is waiting, clear, hazy or unavailable;
# one chip per district under haze, with data-region, data-category (ISPU id), data-ispu.
HAZE_STRIP = "[data-testid=haze-strip]"
HAZE_CHIP = "li[data-testid=haze-chip]"
MAP_CANVAS = "[data-testid=view-map] canvas.map-canvas"

PHONE = {"width": 360, "height": 740}
WALL = {"width": 1920, "height": 1080}


def alert_article(page: Page, alert_id: int) -> Locator:
    """The article of one alert."""
    return page.locator(f'{ALERT}[data-alert-id="{alert_id}"]')


def haze_chip(page: Page, region: str) -> Locator:
    """The haze strip's chip of one district (or map cell)."""
    return page.locator(f'{HAZE_STRIP} {HAZE_CHIP}[data-region="{region}"]')


def sign_in(page: Page, token: str) -> None:
    """Open the console, type the token and sign in; wait for the signed-in header."""
    page.goto("/")
    page.locator(TOKEN).fill(token)
    page.locator(SIGN_IN).click()
    expect(page.locator(USER)).to_be_visible(timeout=5000)


def show_dispatch(page: Page) -> Locator:
    """The dispatcher view, through its tab when it is not the one shown."""
    view = page.locator(DISPATCH_VIEW)
    if not view.is_visible():
        page.locator(DISPATCH_TAB).click()
    expect(view).to_be_visible(timeout=5000)
    return view


def alert_ids(page: Page) -> list[str]:
    """The data-alert-id of every alert article, in page order (duplicates kept)."""
    ids: list[str] = page.locator(ALERT).evaluate_all(
        "articles => articles.map(a => a.getAttribute('data-alert-id'))"
    )
    return ids


def set_language(page: Page, lang: str) -> None:
    """Choose the language in the header and wait for <html lang> to follow."""
    page.locator(LANG).select_option(lang)
    expect(page.locator("html")).to_have_attribute("lang", lang, timeout=5000)


def catalogue(lang: str) -> dict[str, str]:
    """A message catalogue from the repository (i18n/<lang>.json)."""
    messages: dict[str, str] = json.loads((STATIC / "i18n" / f"{lang}.json").read_text())
    return messages


def template_matches(template: str, text: str) -> bool:
    """Whether text is the catalogue string with its {placeholders} filled in somehow."""
    parts = re.split(r"\{[A-Za-z0-9_]+\}", template)
    pattern = ".*?".join(re.escape(" ".join(part.split())) for part in parts)
    return re.fullmatch(pattern, " ".join(text.split()), flags=re.DOTALL) is not None


# Every non-blank text node whose parent element is rendered and visible (checkVisibility:
# no display:none or hidden ancestor, not visibility:hidden, not transparent), with the
# nearest data-i18n and data-value around it; plus the shown option of each visible select
# (an option has no box of its own). `where` locates the text for a failure message.
VISIBLE_TEXT_JS = """
() => {
  const where = el => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
      let part = e.tagName.toLowerCase();
      for (const a of ['data-testid', 'data-i18n', 'data-view', 'id', 'class']) {
        const v = e.getAttribute(a);
        if (v) { part += `[${a}=${v}]`; break; }
      }
      parts.unshift(part);
    }
    return parts.join(' > ');
  };
  const visible = el => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const entry = (text, el) => {
    const i18n = el.closest('[data-i18n]');
    return {
      text,
      where: where(el),
      i18n: i18n ? i18n.getAttribute('data-i18n') : null,
      value: el.closest('[data-value]') !== null,
    };
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest('option') || !visible(parent)) continue;
    out.push(entry(text, parent));
  }
  for (const select of document.querySelectorAll('select')) {
    const option = select.selectedOptions[0];
    if (!visible(select) || !option || !option.textContent.trim()) continue;
    out.push(entry(option.textContent.trim(), option));
  }
  return out;
}
"""

# Every visible element with data-i18n and no data-i18n inside it: its key and its text.
I18N_ELEMENTS_JS = """
() => [...document.querySelectorAll('[data-i18n]')]
  .filter(el => !el.querySelector('[data-i18n]'))
  .filter(el => (el.tagName === 'OPTION' ? el.closest('select') : el)
    .checkVisibility({checkOpacity: true, checkVisibilityCSS: true}))
  .map(el => ({key: el.getAttribute('data-i18n'), text: el.textContent.trim()}))
  .filter(e => e.text)
"""


def visible_texts(page: Page) -> list[dict[str, Any]]:
    """The page's visible text pieces (VISIBLE_TEXT_JS)."""
    found: list[dict[str, Any]] = page.evaluate(VISIBLE_TEXT_JS)
    return found


def i18n_elements(page: Page) -> list[dict[str, str]]:
    """The page's visible innermost data-i18n elements (I18N_ELEMENTS_JS)."""
    found: list[dict[str, str]] = page.evaluate(I18N_ELEMENTS_JS)
    return found


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under artifacts/console/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def other_site(html: str) -> Iterator[str]:
    """Serve one page from a second HTTP server on 127.0.0.1 (another origin: another port)
    and yield its URL."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def forging_page(target: str) -> str:
    """An attacker's page that POSTs to target with the visitor's cookies, twice: a no-cors
    fetch with a JSON body as text/plain (no preflight) and an auto-submitted form."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Promo</title></head><body>
<iframe name="sink" title="sink"></iframe>
<form id="forged" method="POST" action="{target}" target="sink">
  <input type="hidden" name="by" value="attacker">
</form>
<script>
  fetch("{target}", {{
    method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{by: "attacker"}}),
  }}).catch(() => {{}});
  document.getElementById("forged").submit();
</script>
</body></html>"""


class Pages:
    """Console pages, each in its own browser context (its own cookies; clipboard allowed).

    Uncaught page errors and console errors are collected; the `pages` fixture fails a
    test that passed with any (Chromium's "Failed to load resource" lines for the 4xx
    answers the console shows on purpose aside)."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[Page] = []
        self.errors: list[str] = []

    def open(self, viewport: dict[str, int] = WALL) -> Page:
        """A new page in a new context, relative URLs against the console."""
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport={"width": viewport["width"], "height": viewport["height"]},
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.base_url)
        page = context.new_page()
        page.set_default_timeout(10_000)
        n = len(self.opened)
        page.on("pageerror", lambda exc: self.errors.append(f"page {n}: uncaught {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"page {n}: console.{msg.type}: {msg.text}")
                if msg.type == "error" and "Failed to load resource" not in msg.text
                else None
            ),
        )
        self.opened.append(page)
        return page

    def close(self, test_name: str, failed: bool) -> None:
        """Close every page: on failure each is saved as failed-<test>-<n>.png first."""
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name).strip("-")
        for n, page in enumerate(self.opened):
            if failed:
                try:
                    print(f"saved {screenshot(page, f'failed-{name}-{n}')}")
                except PlaywrightError as exc:
                    print(f"no screenshot of page {n}: {exc}")
            page.context.close()
        if self.errors:
            print("browser errors:\n" + "\n".join(self.errors))


def audit_texts(page: Page, lang: str) -> list[str]:
    """Visible text that breaks the catalogue rule in `lang`, one line per piece."""
    messages = catalogue(lang)
    problems: list[str] = []
    for piece in visible_texts(page):
        key = piece["i18n"]
        if key is None and not piece["value"]:
            problems.append(
                f"[{lang}] neither data-i18n nor data-value: {piece['text']!r} at {piece['where']}"
            )
        elif key is not None and key not in messages:
            problems.append(
                f"[{lang}] key {key!r} is not in {lang}.json: {piece['text']!r} at {piece['where']}"
            )
    for element in i18n_elements(page):
        key, text = element["key"], element["text"]
        if key in messages and not template_matches(messages[key], text):
            problems.append(f"[{lang}] {key!r} shows {text!r}, {lang}.json has {messages[key]!r}")
    return problems


def audit_languages(page: Page, where: str = "") -> list[str]:
    """The audit in Indonesian, then in English with no Indonesian left behind; the page is
    left in Indonesian."""
    ident, en = catalogue("id"), catalogue("en")
    set_language(page, "id")
    problems = audit_texts(page, "id")
    set_language(page, "en")
    problems += audit_texts(page, "en")
    for element in i18n_elements(page):
        key, text = element["key"], element["text"]
        if key in ident and ident[key] != en.get(key) and template_matches(ident[key], text):
            problems.append(f"[en] {key!r} still shows the Indonesian {text!r}")
    set_language(page, "id")
    return [f"{p} ({where})" if where else p for p in problems]
