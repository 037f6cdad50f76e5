"""The smoke book in headless Chromium: every page typesets its formulas, loads its images,
asks nothing of another machine, logs no error, and opens its collapsed answers when clicked.

Needs Playwright (the ``dev`` extra) and Debian's ``chromium``; without them the tests are
skipped, unless ``XAISTUDY_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

import os
import re
import shutil
import time

import browser_check
import pytest

from xaistudy.core.store import repo_root

pytestmark = pytest.mark.slow

SCREENSHOT = repo_root() / "test-artefacts" / "synthesis.png"


def require_browser() -> None:
    reason = browser_check.missing()
    if reason is None:
        return
    if os.environ.get("XAISTUDY_REQUIRE_BROWSER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def test_every_page_of_the_smoke_book_reads_in_a_browser(request):
    require_browser()  # before the book is built: a skip costs nothing
    html = request.getfixturevalue("smoke_book") / "_build" / "html"
    SCREENSHOT.unlink(missing_ok=True)
    start = time.perf_counter()
    problems = browser_check.check_book(html, SCREENSHOT)
    pages = len(browser_check.book_pages(html))
    print(f"\nbrowser check: {pages} pages in {time.perf_counter() - start:.1f} s")
    print(f"screenshot of the synthesis page: {SCREENSHOT}")
    assert not problems, "\n".join(problems)
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_browser_check_fails_without_mathjax_or_with_an_image_missing(request, tmp_path):
    """The check can fail: on a copy of the book without its MathJax, a chapter's formulas are
    reported untypeset; with one of its figures deleted, that image is reported."""
    require_browser()
    built = request.getfixturevalue("smoke_book") / "_build" / "html"
    html = tmp_path / "html"
    shutil.copytree(built, html)
    page = next(
        p for p in browser_check.book_pages(html)
        if 'class="math' in (text := (html / p).read_text()) and "_images/" in text
    )
    image = re.search(r'src="(?:\.\./)*(_images/[^"]+)"', (html / page).read_text()).group(1)
    assert browser_check.check_book(html, pages=[page]) == []  # the copy reads as built

    shutil.rmtree(html / "_static" / "mathjax")
    (html / image).unlink()
    problems = browser_check.check_book(html, pages=[page])
    assert any(re.match(rf"{page}: \d+ formula\(s\) not typeset \(MathJax", p) for p in problems)
    assert f"{page}: image {image} did not load" in problems, problems
