"""Best-effort PHI scrubbing for imported notes: dates, phone numbers, record numbers, listed names."""

from __future__ import annotations

import re
from collections.abc import Iterable

_DATE = re.compile(
    r"\b(?:\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{4}-\d{2}-\d{2}|"
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4})\b",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<!\w)(?:\+?1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}\b")
_RECORD = re.compile(r"\b(?:MRN|MR#|Record(?: No\.?| number)?|Acct|Account)[:#\s]*[A-Z]{0,3}\d{5,}\b", re.IGNORECASE)


def scrub_phi(text: str, *, names: Iterable[str] = ()) -> str:
    """Replace dates, phone numbers, record numbers and the given names with bracketed placeholders."""
    text = _RECORD.sub("[RECORD]", text)
    text = _PHONE.sub("[PHONE]", text)
    text = _DATE.sub("[DATE]", text)
    name_list = sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)
    if name_list:
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in name_list) + r")\b", re.IGNORECASE)
        text = pattern.sub("[NAME]", text)
    return text
