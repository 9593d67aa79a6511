"""Bounding what is logged (or put into an error line) of input Vigil was given: a payload, a name list,
a line of a file. A 200,000-name reset payload must cost one short log line, not a megabyte."""
from __future__ import annotations

from typing import Any

LIMIT = 200  # characters of input in one log line


def shorten(value: Any, limit: int = LIMIT) -> str:
    """`value` as text (str as it is, anything else as repr), cut to about `limit` characters with how
    much was left out: 'a, b, c… (+1,234,567 characters)'."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit:,} characters)"


def shorten_list(items: list | tuple | set, limit: int = 10, each: int = 40) -> str:
    """The first `limit` items, each shortened to `each` characters, joined by ', ', and how many more."""
    items = list(items)
    shown = ", ".join(shorten(i, each) for i in items[:limit])
    return shown + (f", … (+{len(items) - limit:,} more)" if len(items) > limit else "")
