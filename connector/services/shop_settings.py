"""Typed view of a shop's settings (stored as JSON on the shop row), with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.domain.eta import ToleranceBand, tolerance_days
from connector.errors import ValidationError


@dataclass(frozen=True, slots=True)
class EngineSettings:
    handling_days: int = 1
    tolerance_days: int = 0
    tolerance_bands: tuple[ToleranceBand, ...] = ()
    default_lead_time_days: int = 14
    fulfilling_locations: tuple[str, ...] | None = None  # None: every location fulfils
    extra: Mapping[str, Any] = field(default_factory=dict)

    def tolerance_for(self, unit_value_cents: int) -> int:
        if not self.tolerance_bands:
            return self.tolerance_days
        return tolerance_days(unit_value_cents, self.tolerance_bands, self.tolerance_days)


def _int(raw: Mapping[str, Any], key: str, default: int, minimum: int = 0) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{key} must be a whole number >= {minimum}", field=key)
    return value


def engine_settings(raw: Mapping[str, Any] | None) -> EngineSettings:
    raw = raw or {}
    bands = []
    for i, band in enumerate(raw.get("tolerance_bands") or []):
        if not isinstance(band, Mapping):
            raise ValidationError("each tolerance band needs max_unit_value_cents and days", field=f"tolerance_bands[{i}]")
        max_value = band.get("max_unit_value_cents")
        if max_value is not None and (not isinstance(max_value, int) or max_value < 0):
            raise ValidationError("max_unit_value_cents must be >= 0", field=f"tolerance_bands[{i}]")
        bands.append(ToleranceBand(max_value, _int(band, "days", 0)))
    locations = raw.get("fulfilling_locations")
    return EngineSettings(
        handling_days=_int(raw, "handling_days", 1),
        tolerance_days=_int(raw, "tolerance_days", 0),
        tolerance_bands=tuple(bands),
        default_lead_time_days=_int(raw, "default_lead_time_days", 14),
        fulfilling_locations=tuple(str(x) for x in locations) if locations is not None else None,
        extra=raw,
    )
