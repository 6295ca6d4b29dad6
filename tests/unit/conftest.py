"""Unit tests run without TensorFlow or Keras: any import of either inside a unit test fails.

`tests/integration/test_layout.py` also runs this folder in a fresh interpreter where neither package
can be imported at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

BLOCKED = ("tensorflow", "keras")


@pytest.fixture(autouse=True)
def no_tensorflow() -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in BLOCKED}
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
