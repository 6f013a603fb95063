"""Dates in words for e-mails, without the process locale (which is global and often "C")."""

from __future__ import annotations

from datetime import date

_MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}


def format_date(value: date | None, language: str) -> str:
    """``March 5, 2027`` in English, ``5 mars 2027`` (``1er mars 2027``) in French."""
    if value is None:
        return ""
    if language == "fr":
        day = "1er" if value.day == 1 else str(value.day)
        return f"{day} {_MONTHS['fr'][value.month - 1]} {value.year}"
    return f"{_MONTHS['en'][value.month - 1]} {value.day}, {value.year}"
