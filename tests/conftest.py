"""Test-wide settings: the artifact cache of a test session lives in a temporary folder.

Set before any test runs, so chapter runs (and their notebook kernels, which inherit the
environment) never read or write the checkout's ``data/cache``.
"""

import os
import tempfile

_cache = tempfile.TemporaryDirectory(prefix="xaistudy-test-cache-")
os.environ["XAISTUDY_CACHE"] = _cache.name
