"""Suite-wide options: `--slow` runs the property-based (hypothesis) tests with many more examples."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("default", max_examples=25, print_blob=True)
settings.register_profile("slow", max_examples=500, print_blob=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="hypothesis: 500 examples per property instead of 25")


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile("slow" if config.getoption("--slow") else "default")
