"""Text as a database can keep it. PostgreSQL refuses a NUL character in text, and no UTF-8 encoding exists for a
lone surrogate (JSON allows "\\ud800" on its own); what a person sent is still kept to be shown back, so both are
written as visible escapes (\\x00, \\ud800) instead of failing the whole request."""

from __future__ import annotations


def storable(text: str) -> str:
    """`text` with NUL characters and lone surrogates replaced by their backslash escapes; other text unchanged."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
