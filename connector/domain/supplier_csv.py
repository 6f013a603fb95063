"""Import and export of the supplier terms CSV (one row per supplier SKU).

Merchants keep supplier terms in a spreadsheet, so the import must explain *every* problem
at once (row and column, the way the spreadsheet numbers them: header = row 1) instead of
stopping at the first. Supplier-level terms are repeated on each row of that supplier and
must agree; the first row of a supplier is the reference the others are compared with.

Money is parsed with :class:`decimal.Decimal` into integer cents (two decimal places at most).
Cells are stripped. A leading ``'`` is how :func:`export_supplier_csv` defuses spreadsheet
formulas (``=``, ``+``, ``-``, ``@``); see :func:`csv_safe_text`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

COLUMNS: tuple[str, ...] = (
    "supplier",
    "email",
    "delivery_method",
    "webhook_url",
    "lead_time_days",
    "min_order_value",
    "currency",
    "max_wait_days",
    "auto_send",
    "dropship",
    "dropship_min_units",
    "dropship_min_value",
    "sku",
    "supplier_sku",
    "unit_cost",
    "pack_size",
    "moq",
    # Added later, so last: older files and exports keep their column order.
    "dropship_max_wait_days",
)

# Columns describing the supplier rather than the item: every row of a supplier must agree.
SUPPLIER_COLUMNS: tuple[str, ...] = (*COLUMNS[1:12], "dropship_max_wait_days")
# Columns added after files were first exported: a file without them still imports (the
# value is then left as it is), but when the column is there its cells are checked.
OPTIONAL_COLUMNS: tuple[str, ...] = ("dropship_max_wait_days",)
MAX_WAIT_DAYS = 365

DELIVERY_METHODS = ("email", "webhook")
_TRUE = {"yes", "y", "true", "1", "x", "oui"}
_FALSE = {"no", "n", "false", "0", "", "non"}
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
_DEFUSED = re.compile(r"^'+[=+\-@\t\r]")


def csv_safe_text(value: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula; :func:`csv_plain_text` undoes it.

    Quotes already in front of a formula character get one more, so the pair round-trips
    exactly (``'=x`` → ``''=x`` → ``'=x``).
    """
    return "'" + value if _FORMULA_START.match(value) else value


def csv_plain_text(value: str) -> str:
    return value[1:] if _DEFUSED.match(value) else value


@dataclass(frozen=True, slots=True)
class SupplierTermsRow:
    supplier: str
    email: str | None  # required when delivery_method is email
    delivery_method: str  # email | webhook
    webhook_url: str | None
    lead_time_days: int
    min_order_value_cents: int
    currency: str
    max_wait_days: int | None  # send anyway after this many days below the minimum; blank = no limit
    auto_send: bool
    dropship: bool
    dropship_min_units: int  # blank = 0 = no quota
    dropship_min_value_cents: int
    sku: str
    supplier_sku: str
    unit_cost_cents: int
    pack_size: int
    moq: int
    dropship_max_wait_days: int | None = None  # forward below the dropship quota after this; blank = never


@dataclass(frozen=True, slots=True)
class RowError:
    row_number: int  # spreadsheet numbering: the header is row 1
    column: str | None  # None when the whole row (or file) is at fault
    message: str

    def __str__(self) -> str:
        where = f"row {self.row_number}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Either ``rows`` (all valid) or ``errors`` (every problem found); never a partial import."""

    rows: tuple[SupplierTermsRow, ...] = ()
    errors: tuple[RowError, ...] = ()
    # The columns the file has: an optional column it lacks must not overwrite saved values.
    columns: tuple[str, ...] = COLUMNS

    @property
    def ok(self) -> bool:
        return not self.errors


class _Cells:
    """Typed access to one CSV record, collecting an error per bad cell instead of raising."""

    def __init__(self, row_number: int, record: dict[str, str], errors: list[RowError]) -> None:
        self.row_number = row_number
        self.record = record
        self.errors = errors
        self.failed = False

    def _fail(self, column: str, message: str) -> None:
        self.failed = True
        self.errors.append(RowError(self.row_number, column, message))

    def text(self, column: str, *, required: bool = True, max_length: int = 255) -> str:
        value = csv_plain_text(self.record.get(column, "").strip())
        if required and not value:
            self._fail(column, "is required")
        elif len(value) > max_length:
            self._fail(column, f"is longer than {max_length} characters")
        return value

    def integer(
        self, column: str, *, minimum: int, required: bool = True, maximum: int | None = None
    ) -> int | None:
        raw = self.record.get(column, "").strip()
        if not raw:
            if required:
                self._fail(column, "is required")
            return None
        try:
            number = Decimal(raw)
        except InvalidOperation:
            self._fail(column, f"must be a whole number, got {raw!r}")
            return None
        if not number.is_finite() or number != number.to_integral_value():
            self._fail(column, f"must be a whole number, got {raw!r}")
            return None
        if number < minimum:
            self._fail(column, f"must be at least {minimum}, got {raw}")
            return None
        if maximum is not None and number > maximum:
            self._fail(column, f"must be at most {maximum}, got {raw}")
            return None
        return int(number)

    def cents(self, column: str, *, minimum: int, required: bool = True) -> int | None:
        raw = self.record.get(column, "").strip()
        if not raw:
            if required:
                self._fail(column, "is required")
            return None
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            self._fail(column, f"must be an amount like 12.50, got {raw!r}")
            return None
        if not amount.is_finite():
            self._fail(column, f"must be an amount like 12.50, got {raw!r}")
            return None
        cents = amount * 100
        if cents != cents.to_integral_value():
            self._fail(column, f"has more than two decimals: {raw}")
            return None
        if cents < minimum:
            self._fail(column, f"must not be {'negative' if minimum == 0 else 'zero or negative'}, got {raw}")
            return None
        return int(cents)

    def boolean(self, column: str) -> bool:
        raw = self.record.get(column, "").strip().lower()
        if raw in _TRUE:
            return True
        if raw not in _FALSE:
            self._fail(column, f"must be yes or no, got {raw!r}")
        return False


def parse_supplier_csv(text: str, known_skus: set[str] | None = None) -> ImportResult:
    """Parse supplier terms; report every bad row and column, or return every row typed.

    ``known_skus`` (the shop's variant SKUs) turns a SKU the shop does not sell into an error.
    Comma or semicolon separated (a European Excel writes semicolons); a UTF-8 BOM is ignored.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return ImportResult(errors=(RowError(1, None, "the file is empty"),))
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        return ImportResult(errors=(RowError(reader.line_num, None, f"not a readable CSV file: {exc}"),))

    header = [name.strip().lower() for name in records[0]]
    if not any(header):
        return ImportResult(errors=(RowError(1, None, "row 1 must be the header row (column names)"),))
    errors: list[RowError] = []
    seen_columns: set[str] = set()
    for name in header:
        if name in seen_columns and name in COLUMNS:
            errors.append(RowError(1, name, "column appears twice"))
        seen_columns.add(name)
    errors.extend(
        RowError(1, name, "column is missing")
        for name in COLUMNS
        if name not in seen_columns and name not in OPTIONAL_COLUMNS
    )
    if errors:
        return ImportResult(errors=tuple(errors))

    present = tuple(name for name in COLUMNS if name in seen_columns)
    index = {name: header.index(name) for name in present}
    rows: list[tuple[int, SupplierTermsRow]] = []
    for offset, values in enumerate(records[1:], start=2):
        if not any(v.strip() for v in values):
            continue  # blank spreadsheet line
        if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
            errors.append(RowError(offset, None, f"has {len(values)} cells but the header has {len(header)}"))
        record = {name: values[i] if i < len(values) else "" for name, i in index.items()}
        row = _parse_row(offset, record, known_skus, errors)
        if row is not None:
            rows.append((offset, row))

    _check_duplicates_and_consistency(rows, errors)
    if not rows and not errors:
        errors.append(RowError(2, None, "the file has a header but no rows"))
    if errors:
        errors.sort(key=lambda e: (e.row_number, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
        return ImportResult(errors=tuple(errors))
    return ImportResult(rows=tuple(row for _, row in rows), columns=present)


def _parse_row(
    row_number: int, record: dict[str, str], known_skus: set[str] | None, errors: list[RowError]
) -> SupplierTermsRow | None:
    c = _Cells(row_number, record, errors)
    supplier = c.text("supplier")
    email = c.text("email", required=False) or None
    if email and not _EMAIL.match(email):
        c._fail("email", f"is not an e-mail address: {email!r}")
    method = c.text("delivery_method").lower()
    if method and method not in DELIVERY_METHODS:
        c._fail("delivery_method", f"must be email or webhook, got {method!r}")
    if method == "email" and not email:
        c._fail("email", "is required when delivery_method is email")
    webhook_url = c.text("webhook_url", required=False, max_length=500) or None
    if method == "webhook" and not webhook_url:
        c._fail("webhook_url", "is required when delivery_method is webhook")
    if webhook_url and not re.match(r"^https?://[^\s/]+", webhook_url):
        c._fail("webhook_url", f"must be an http(s) URL, got {webhook_url!r}")
    lead_time = c.integer("lead_time_days", minimum=0)
    min_order = c.cents("min_order_value", minimum=0, required=False)
    currency = c.text("currency").upper()
    if currency and not _CURRENCY.match(currency):
        c._fail("currency", f"must be a three-letter code like EUR, got {currency!r}")
    max_wait = c.integer("max_wait_days", minimum=0, required=False)
    auto_send = c.boolean("auto_send")
    dropship = c.boolean("dropship")
    ds_units = c.integer("dropship_min_units", minimum=0, required=False)
    ds_value = c.cents("dropship_min_value", minimum=0, required=False)
    ds_max_wait = c.integer("dropship_max_wait_days", minimum=0, maximum=MAX_WAIT_DAYS, required=False)
    sku = c.text("sku")
    if sku and known_skus is not None and sku not in known_skus:
        c._fail("sku", f"the shop has no variant with SKU {sku!r}")
    supplier_sku = c.text("supplier_sku", required=False) or sku
    unit_cost = c.cents("unit_cost", minimum=0)
    pack_size = c.integer("pack_size", minimum=1, required=False)
    moq = c.integer("moq", minimum=0, required=False)
    if c.failed:
        return None
    assert lead_time is not None and unit_cost is not None
    return SupplierTermsRow(
        supplier=supplier,
        email=email,
        delivery_method=method,
        webhook_url=webhook_url,
        lead_time_days=lead_time,
        min_order_value_cents=min_order or 0,
        currency=currency,
        max_wait_days=max_wait,
        auto_send=auto_send,
        dropship=dropship,
        dropship_min_units=ds_units or 0,
        dropship_min_value_cents=ds_value or 0,
        sku=sku,
        supplier_sku=supplier_sku,
        unit_cost_cents=unit_cost,
        pack_size=pack_size or 1,
        moq=moq or 0,
        dropship_max_wait_days=ds_max_wait,
    )


_SUPPLIER_FIELDS = (
    ("email", "email"),
    ("delivery_method", "delivery_method"),
    ("webhook_url", "webhook_url"),
    ("lead_time_days", "lead_time_days"),
    ("min_order_value", "min_order_value_cents"),
    ("currency", "currency"),
    ("max_wait_days", "max_wait_days"),
    ("auto_send", "auto_send"),
    ("dropship", "dropship"),
    ("dropship_min_units", "dropship_min_units"),
    ("dropship_min_value", "dropship_min_value_cents"),
    ("dropship_max_wait_days", "dropship_max_wait_days"),
)


def _check_duplicates_and_consistency(
    rows: Sequence[tuple[int, SupplierTermsRow]], errors: list[RowError]
) -> None:
    first_of_supplier: dict[str, tuple[int, SupplierTermsRow]] = {}
    first_of_item: dict[tuple[str, str], int] = {}
    for row_number, row in rows:
        key = row.supplier.casefold()
        item_key = (key, row.sku)
        if item_key in first_of_item:
            errors.append(
                RowError(
                    row_number,
                    "sku",
                    f"{row.supplier} / {row.sku} already appears on row {first_of_item[item_key]}",
                )
            )
        else:
            first_of_item[item_key] = row_number
        if key not in first_of_supplier:
            first_of_supplier[key] = (row_number, row)
            continue
        ref_number, ref = first_of_supplier[key]
        if row.supplier != ref.supplier:
            errors.append(
                RowError(
                    row_number,
                    "supplier",
                    f"{row.supplier!r} is spelled differently on row {ref_number} "
                    f"({ref.supplier!r}); use one spelling per supplier",
                )
            )
        for column, attr in _SUPPLIER_FIELDS:
            if getattr(row, attr) != getattr(ref, attr):
                errors.append(
                    RowError(
                        row_number,
                        column,
                        f"differs from row {ref_number} for supplier {ref.supplier} "
                        f"({_show(getattr(row, attr))} vs {_show(getattr(ref, attr))}); "
                        "supplier terms must be the same on every row",
                    )
                )


def _show(value: object) -> str:
    return "(blank)" if value is None else str(value)


def _money(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def export_supplier_csv(rows: Iterable[SupplierTermsRow]) -> str:
    """Write rows in the import format; ``parse_supplier_csv(export_supplier_csv(rows)).rows == rows``."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                csv_safe_text(r.supplier),
                csv_safe_text(r.email or ""),
                r.delivery_method,
                csv_safe_text(r.webhook_url or ""),
                r.lead_time_days,
                _money(r.min_order_value_cents),
                r.currency,
                _number(r.max_wait_days),
                "yes" if r.auto_send else "no",
                "yes" if r.dropship else "no",
                r.dropship_min_units,
                _money(r.dropship_min_value_cents),
                csv_safe_text(r.sku),
                csv_safe_text(r.supplier_sku),
                _money(r.unit_cost_cents),
                r.pack_size,
                r.moq,
                _number(r.dropship_max_wait_days),
            ]
        )
    return out.getvalue()
