"""Masking of personal data for logs, metadata, check descriptions and error messages.

An ID is shown as ``210505********123X`` and a name as ``张*`` (outputs.md, "What never leaves
in the clear"). Only the 附件 files, 公示 lists and problem lists carry names and IDs.
"""

from __future__ import annotations

import re

_LONG_DIGITS = re.compile(r"(?<![0-9])([0-9]{6})[0-9Xx*]{5,8}([0-9]{3}[0-9Xx]|[0-9]{3})(?![0-9])")


def mask_id(value: object) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) <= 10:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_name(value: object) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    return text[0] + "*" * max(1, len(text) - 1)


def mask_text(text: str) -> str:
    """Mask every 15- to 18-character ID-like run inside free text (e.g. an error message)."""
    return _LONG_DIGITS.sub(lambda m: mask_id(m.group(0)), text)
