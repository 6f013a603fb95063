"""What autogenerate compares: shared by env.py and ``migrate.pending_differences``."""

from __future__ import annotations


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """APScheduler keeps its job store in tables of its own; they are not part of our model."""
    return not (type_ == "table" and name is not None and name.startswith("apscheduler_"))
