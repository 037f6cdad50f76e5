"""The built book as a reader sees it: every page opened in headless Chromium (via Playwright).

``check_book(html_root)`` serves the book on a localhost port and returns one line per problem:
a request that leaves the machine, a console error or uncaught exception, an image that does not
load, a formula that MathJax did not typeset, a collapsed block (``<details>``) that does not open
when its summary is clicked. A helper of the tests, not a test file.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SYNTHESIS = "book/chapters/synthesis/synthesis.html"
MATHJAX_WAIT_MS = 15_000
SHOT_HEIGHT = 12_000  # the screenshot's top of the page, in CSS pixels (a long page takes long)
REFRESH = re.compile(r'<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.I)

# Formulas: sphinx's math elements without a typeset container, and TeX delimiters left in the
# text outside code (MathJax replaces both when it runs).
UNTYPESET_JS = r"""() => {
  const raw = Array.from(document.querySelectorAll('.math'))
    .filter(e => !e.querySelector('mjx-container'))
    .map(e => e.textContent.trim());
  const skip = 'PRE,CODE,SCRIPT,STYLE,TEXTAREA,KBD,SAMP';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const delims = /\\\(.+?\\\)|\\\[.+?\\\]|\$\$.+?\$\$/s;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest(skip) || n.parentElement.closest('.math')) continue;
    const m = n.textContent.match(delims);
    if (m) raw.push(m[0]);
  }
  return {raw: raw, typeset: document.querySelectorAll('mjx-container').length};
}"""
MATHJAX_JS = """async (ms) => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return 'absent';
  const late = new Promise(r => setTimeout(() => r('timeout'), ms));
  return Promise.race([mj.startup.promise.then(() => 'done', e => 'failed: ' + e), late]);
}"""
# Images: lazy ones are asked for now; each is given a bounded time to load or fail.
IMAGES_JS = """async (ms) => {
  const imgs = Array.from(document.images);
  for (const i of imgs) if (i.loading === 'lazy') i.loading = 'eager';
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, ms);
  })));
  return imgs.filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => i.currentSrc || i.src || '(no src)');
}"""


def chromium_path() -> str | None:
    """Debian's Chromium (or a Chromium on the PATH under another usual name)."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


def missing() -> str | None:
    """Why the browser check cannot run here, in one line; None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the browser test needs Playwright: pip install -e '.[dev]'"
    if chromium_path() is None:
        return "the browser test needs Debian's Chromium: apt-get install chromium chromium-driver"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on a free localhost port for the block; yield its base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def book_pages(html_root: Path) -> list[str]:
    """Every HTML page of the book, relative to its root (not the theme's templates)."""
    pages = html_root.rglob("*.html")
    pages = [p.relative_to(html_root).as_posix() for p in pages]
    return sorted(p for p in pages if not p.startswith(("_static/", "_sources/")))


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https", "ws", "wss") or parts.hostname in LOCAL_HOSTS


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def check_book(
    html_root: Path,
    screenshot: Path | None = None,
    *,
    pages: list[str] | None = None,
    screenshot_page: str = SYNTHESIS,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Open every page of the built book at ``html_root`` (or only ``pages``, paths relative
    to it) in headless Chromium; return the problems found, one line each, prefixed with the
    page. With ``screenshot``, a PNG of ``screenshot_page`` (its top ``SHOT_HEIGHT`` pixels,
    1280 wide) is written there."""
    from playwright.sync_api import Error, sync_playwright

    html_root = Path(html_root)
    pages = book_pages(html_root) if pages is None else pages
    problems: list[str] = []
    if screenshot is not None and screenshot_page not in pages:
        problems.append(f"{screenshot_page}: not in the book, no screenshot taken")
    with serve(html_root) as base, sync_playwright() as pw:
        # launch() starts Chromium on a fresh, empty profile of its own
        browser = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(timeout_ms)
            for name in pages:
                shot = screenshot if name == screenshot_page else None
                try:
                    problems += _check_page(context, base, html_root, name, shot)
                except Error as e:  # a page that hangs or crashes the tab: say so, go on
                    problems.append(f"{name}: the browser failed: {_short(str(e))}")
        finally:
            browser.close()
    return problems


def _check_page(context, base: str, html_root: Path, name: str, screenshot: Path | None):
    problems: list[str] = []
    say = problems.append
    failed_urls: set[str] = set()

    def rel(url: str) -> str:
        return unquote(url[len(base):]) if url.startswith(base) else url

    def leaves(route):
        say(f"{name}: request leaves the machine: {_short(route.request.url, 200)}")
        route.abort()

    def response(resp):
        if resp.status >= 400:
            failed_urls.add(resp.url)
            say(f"{name}: {rel(resp.url)} answered HTTP {resp.status}")

    def console(msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if msg.text.startswith("Failed to load resource") and (
            where in failed_urls or not _local(where)  # said above, with the address
        ):
            return
        say(f"{name}: console error: {_short(msg.text)}")

    page = context.new_page()
    page.route(lambda url: not _local(url), leaves)
    page.on("response", response)
    page.on("console", console)
    page.on("pageerror", lambda e: say(f"{name}: uncaught exception: {_short(str(e))}"))
    try:
        text = (html_root / name).read_text(errors="replace")
        if refresh := REFRESH.search(text[:2000]):  # a redirect (index.html): it must arrive
            target = urlsplit(base + str(Path(name).parent / refresh.group(1))).path
            page.goto(base + name)
            try:
                page.wait_for_url(lambda u: urlsplit(u).path.endswith(target), timeout=10_000)
            except Exception:
                say(f"{name}: does not lead to {refresh.group(1)} (stayed at {rel(page.url)})")
            return problems
        page.goto(base + name, wait_until="load")
        state = page.evaluate(MATHJAX_JS, MATHJAX_WAIT_MS)
        math = page.evaluate(UNTYPESET_JS)
        if math["raw"]:
            why = {"absent": "MathJax did not load", "timeout": "MathJax did not finish"}
            why = why.get(state, "MathJax did not typeset them" if state == "done" else state)
            say(f"{name}: {len(math['raw'])} formula(s) not typeset ({why}), "
                f"the first: {_short(math['raw'][0], 60)}")
        for src in page.evaluate(IMAGES_JS, 10_000):
            say(f"{name}: image {rel(src)} did not load")
        problems += _open_details(page, name)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_HEIGHT)
            clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height}
            page.screenshot(path=str(screenshot), full_page=True, clip=clip)
        page.wait_for_timeout(50)  # late console messages of the page's own scripts
    finally:
        page.close()
    return problems


def _open_details(page, name: str) -> list[str]:
    """Click the summary of every closed ``<details>``, in page order (so a block inside
    another is reached after its parent opened); each must then be open."""
    problems = []
    blocks = page.locator("details")
    for i in range(blocks.count()):
        block = blocks.nth(i)
        summary = block.locator(":scope > summary")
        label = _short(summary.first.text_content() or "", 50) if summary.count() else ""
        what = f"collapsed block {i + 1} ({label!r})"
        if not summary.count():
            problems.append(f"{name}: {what} has no summary to click")
            continue
        if block.evaluate("d => d.open"):
            continue
        try:
            summary.first.click(timeout=5_000)
        except Exception as e:
            problems.append(f"{name}: {what} cannot be clicked: {_short(str(e), 100)}")
            continue
        deadline = time.monotonic() + 2
        while not block.evaluate("d => d.open") and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        if not block.evaluate("d => d.open"):
            problems.append(f"{name}: {what} does not open when clicked")
    return problems
