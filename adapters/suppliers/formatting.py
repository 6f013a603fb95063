"""Small formatting helpers shared by the supplier documents (CSV, PDF, e-mail)."""

from __future__ import annotations

from connector.domain.records import Address


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def parse_money(text: str) -> int:
    whole, _, frac = text.strip().partition(".")
    negative = whole.startswith("-")
    cents = abs(int(whole)) * 100 + int((frac + "00")[:2])
    return -cents if negative else cents


def address_lines(address: Address | None) -> list[str]:
    """Postal lines in the usual western order, skipping what is missing."""
    if address is None:
        return []
    city_line = " ".join(p for p in (address.zip, address.city) if p)
    if address.province:
        city_line = f"{city_line}, {address.province}" if city_line else address.province
    candidates = [
        address.name,
        address.company,
        address.address1,
        address.address2,
        city_line,
        address.country_code,
        f"Tel. {address.phone}" if address.phone else None,
    ]
    return [c for c in candidates if c]
