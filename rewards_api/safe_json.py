"""JSON that is always JSON: finite numbers and valid UTF-8, whatever user code put in the values.

Reward functions are the users' code: one that returns ``1e308`` makes an episode score of infinity, and
one that raises ``ValueError(chr(55296))`` makes an error message holding a lone surrogate, which no UTF-8
encoder accepts. Python's ``json`` writes the first as ``Infinity`` (not JSON) or refuses it, and the
second breaks the encoding to bytes. :func:`dumps` is the one encoder of everything that leaves the server
(responses, error answers, event streams): a non-finite float becomes ``null`` and a surrogate U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["clean", "clean_text", "dumps"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with every surrogate code point (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def clean(value: Any, numbers: bool = True) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, strings, numbers) whose floats are finite (NaN and
    infinity: ``None``; left as they are with ``numbers=False``) and whose strings (keys too) are valid
    Unicode text."""
    if isinstance(value, float):
        return value if not numbers or math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key) if isinstance(key, str) else key: clean(item, numbers)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item, numbers) for item in value]
    return value


def dumps(value: Any, **options: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (``options`` as for :func:`json.dumps`), cleaned by :func:`clean`
    only when it needs to be (the common case costs one plain ``json.dumps``)."""
    settings = {"ensure_ascii": False, "separators": (",", ":"), **options, "allow_nan": False}
    try:
        return json.dumps(value, **settings).encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # a non-finite float, or a surrogate
        return json.dumps(clean(value), **settings).encode("utf-8")
