import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.supplier_csv import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    ImportResult,
    RowError,
    SupplierTermsRow,
    csv_plain_text,
    csv_safe_text,
    export_supplier_csv,
    parse_supplier_csv,
)

KNOWN = {"LAMP-001", "LAMP-002", "SHADE-9", "BULB-E27"}

GOOD = """supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,auto_send,dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq
Atelier Nord,orders@atelier-nord.test,email,,14,250.00,EUR,,yes,no,,,LAMP-001,AN-1001,19.99,6,12
Atelier Nord,orders@atelier-nord.test,email,,14,250,EUR,,yes,no,,,LAMP-002,AN-1002,22.5,1,0
Lux Direct,,webhook,https://api.lux.test/po,5,0,usd,3,no,yes,10,150.00,BULB-E27,,2.10,10,
"""


def csv_with(*rows: dict[str, str], header: list[str] | None = None) -> str:
    base = dict(next(csv.DictReader(io.StringIO(GOOD))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for changes in rows:
        writer.writerow({**base, **changes})
    return out.getvalue()


def errors_of(result: ImportResult) -> set[tuple[int, str | None]]:
    assert result.rows == ()
    return {(e.row_number, e.column) for e in result.errors}


def test_a_good_file_gives_typed_rows_with_money_in_cents() -> None:
    result = parse_supplier_csv(GOOD, known_skus=KNOWN)
    assert result.ok, [str(e) for e in result.errors]
    first, second, lux = result.rows
    assert first == SupplierTermsRow(
        supplier="Atelier Nord",
        email="orders@atelier-nord.test",
        delivery_method="email",
        webhook_url=None,
        lead_time_days=14,
        min_order_value_cents=25000,
        currency="EUR",
        max_wait_days=None,
        auto_send=True,
        dropship=False,
        dropship_min_units=0,
        dropship_min_value_cents=0,
        sku="LAMP-001",
        supplier_sku="AN-1001",
        unit_cost_cents=1999,
        pack_size=6,
        moq=12,
    )
    assert second.unit_cost_cents == 2250 and second.pack_size == 1
    assert (lux.currency, lux.supplier_sku, lux.moq, lux.dropship_min_value_cents) == (
        "USD",
        "BULB-E27",
        0,
        15000,
    )


def test_missing_columns_are_each_reported_on_the_header_row() -> None:
    header = [c for c in COLUMNS if c not in ("pack_size", "currency")]
    result = parse_supplier_csv(csv_with({}, header=header))
    assert errors_of(result) == {(1, "currency"), (1, "pack_size")}


def test_bad_pack_sizes_are_reported_for_every_row() -> None:
    text = csv_with(
        {"sku": "LAMP-001", "pack_size": "six"},
        {"sku": "LAMP-002", "pack_size": "-6"},
        {"sku": "SHADE-9", "pack_size": "0"},
        {"sku": "BULB-E27", "pack_size": "2.5"},
    )
    result = parse_supplier_csv(text, known_skus=KNOWN)
    assert errors_of(result) == {(2, "pack_size"), (3, "pack_size"), (4, "pack_size"), (5, "pack_size")}
    assert "six" in str(result.errors[0])


def test_unknown_skus_are_reported_only_when_the_shop_catalogue_is_given() -> None:
    text = csv_with({"sku": "LAMP-001"}, {"sku": "NOPE-1"}, {"sku": "NOPE-2"})
    assert errors_of(parse_supplier_csv(text, known_skus=KNOWN)) == {(3, "sku"), (4, "sku")}
    assert parse_supplier_csv(text).ok


def test_duplicate_supplier_sku_rows_are_reported() -> None:
    text = csv_with({"sku": "LAMP-001"}, {"sku": "LAMP-002"}, {"sku": "LAMP-001", "supplier_sku": "X"})
    result = parse_supplier_csv(text, known_skus=KNOWN)
    assert errors_of(result) == {(4, "sku")}
    assert "row 2" in result.errors[0].message


def test_inconsistent_supplier_terms_are_reported_per_column() -> None:
    text = csv_with(
        {"sku": "LAMP-001"},
        {"sku": "LAMP-002", "lead_time_days": "21", "currency": "USD"},
        {"sku": "SHADE-9", "min_order_value": "250"},  # same value, written differently: fine
    )
    assert errors_of(parse_supplier_csv(text, known_skus=KNOWN)) == {(3, "lead_time_days"), (3, "currency")}


def test_every_kind_of_bad_cell_is_reported_at_once() -> None:
    text = csv_with(
        {"sku": "LAMP-001", "email": "not-an-email", "unit_cost": "12,50"},
        {"sku": "LAMP-009", "supplier": "Mailer", "email": ""},
        {"sku": "LAMP-002", "supplier": "Other", "delivery_method": "fax", "unit_cost": "-1"},
        {"sku": "SHADE-9", "supplier": "Hook Co", "delivery_method": "webhook", "webhook_url": ""},
        {"sku": "", "supplier": "", "auto_send": "maybe", "lead_time_days": "", "unit_cost": "1.234"},
        {"sku": "X" * 256},
    )
    assert errors_of(parse_supplier_csv(text)) == {
        (2, "email"),
        (2, "unit_cost"),
        (3, "email"),
        (4, "delivery_method"),
        (4, "unit_cost"),
        (5, "webhook_url"),
        (6, "supplier"),
        (6, "lead_time_days"),
        (6, "auto_send"),
        (6, "sku"),
        (6, "unit_cost"),
        (7, "sku"),
    }


def test_semicolon_files_and_byte_order_marks_from_excel_are_read() -> None:
    text = "\ufeff" + GOOD.replace(",", ";")
    result = parse_supplier_csv(text, known_skus=KNOWN)
    assert result.ok and len(result.rows) == 3


def test_empty_and_header_only_files_are_errors() -> None:
    assert not parse_supplier_csv("").ok
    assert not parse_supplier_csv(",".join(COLUMNS) + "\n").ok


def test_row_error_reads_like_a_sentence() -> None:
    assert (
        str(RowError(4, "pack_size", "must be at least 1, got 0"))
        == "row 4, column pack_size: must be at least 1, got 0"
    )


def test_export_then_import_gives_the_same_rows() -> None:
    rows = parse_supplier_csv(GOOD).rows
    assert parse_supplier_csv(export_supplier_csv(rows)).rows == rows


def test_formula_defusing_round_trips() -> None:
    for text in ["=1+1", "'=1+1", "''@x", "-5", "plain", "'quoted", ""]:
        assert csv_plain_text(csv_safe_text(text)) == text
    assert csv_safe_text("=cmd") == "'=cmd"


# -- property: export/import round trip ------------------------------------------------------

cell_text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"
        )
        | st.sampled_from([" ", ",", ";", '"', "'", "=", "-", "@", "+", "\n"]),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
money = st.integers(min_value=0, max_value=10**9)
maybe_int = st.none() | st.integers(min_value=0, max_value=10_000)


@st.composite
def supplier_rows(draw: st.DrawFn) -> list[SupplierTermsRow]:
    rows: list[SupplierTermsRow] = []
    names = draw(st.lists(cell_text, min_size=1, max_size=3, unique_by=str.casefold))
    for name in names:
        method = draw(st.sampled_from(["email", "webhook"]))
        terms = dict(
            supplier=name,
            email=draw(
                st.from_regex(r"[a-z0-9._+-]{1,10}@[a-z0-9-]{1,10}\.[a-z]{2,6}", fullmatch=True)
                | (st.none() if method == "webhook" else st.nothing())
            ),
            delivery_method=method,
            webhook_url=(
                draw(st.from_regex(r"https://[a-z0-9.-]{1,20}/[a-z0-9/?=&]{0,20}", fullmatch=True))
                if method == "webhook"
                else draw(st.none() | st.just("https://example.test/hook"))
            ),
            lead_time_days=draw(st.integers(0, 365)),
            min_order_value_cents=draw(money),
            currency=draw(st.sampled_from(["EUR", "USD", "GBP", "CAD"])),
            max_wait_days=draw(maybe_int),
            auto_send=draw(st.booleans()),
            dropship=draw(st.booleans()),
            dropship_min_units=draw(st.integers(0, 10_000)),
            dropship_min_value_cents=draw(money),
            dropship_max_wait_days=draw(st.none() | st.integers(0, 365)),
        )
        for sku in draw(st.lists(cell_text, min_size=1, max_size=4, unique=True)):
            rows.append(
                SupplierTermsRow(
                    **terms,  # type: ignore[arg-type]
                    sku=sku,
                    supplier_sku=draw(cell_text),
                    unit_cost_cents=draw(money),
                    pack_size=draw(st.integers(1, 500)),
                    moq=draw(st.integers(0, 5000)),
                )
            )
    return rows


@settings(max_examples=150, deadline=None, database=None)
@given(supplier_rows())
def test_any_valid_rows_survive_export_and_import(rows: list[SupplierTermsRow]) -> None:
    result = parse_supplier_csv(export_supplier_csv(rows), known_skus={r.sku for r in rows})
    assert result.errors == ()
    assert result.rows == tuple(rows)


def test_the_dropship_max_wait_is_read_per_supplier_and_written_back_by_the_export() -> None:
    text = csv_with({"sku": "LAMP-001", "dropship": "yes", "dropship_max_wait_days": "4"},
                    {"sku": "LAMP-002", "dropship": "yes", "dropship_max_wait_days": "4"})
    result = parse_supplier_csv(text, known_skus=KNOWN)
    assert result.ok, [str(e) for e in result.errors]
    assert [r.dropship_max_wait_days for r in result.rows] == [4, 4]
    assert "dropship_max_wait_days" in result.columns

    exported = export_supplier_csv(result.rows)
    [header, *lines] = list(csv.reader(io.StringIO(exported)))
    column = header.index("dropship_max_wait_days")
    assert [line[column] for line in lines] == ["4", "4"]
    assert parse_supplier_csv(exported, known_skus=KNOWN).rows == result.rows


def test_every_bad_dropship_max_wait_is_reported_by_row_and_nothing_is_returned() -> None:
    text = csv_with(
        {"sku": "LAMP-001", "supplier": "A", "dropship_max_wait_days": "soon"},
        {"sku": "LAMP-002", "supplier": "B", "dropship_max_wait_days": "-2"},
        {"sku": "SHADE-9", "supplier": "C", "dropship_max_wait_days": "1.5"},
        {"sku": "BULB-E27", "supplier": "D", "dropship_max_wait_days": "400"},
        {"sku": "LAMP-001", "supplier": "E", "dropship_max_wait_days": "3"},
        {"sku": "LAMP-002", "supplier": "E", "dropship_max_wait_days": "5"},
    )
    result = parse_supplier_csv(text, known_skus=KNOWN)
    assert errors_of(result) == {(row, "dropship_max_wait_days") for row in (2, 3, 4, 5, 7)}
    messages = {e.row_number: e.message for e in result.errors}
    assert "whole number" in messages[2] and "at least 0" in messages[3]
    assert "whole number" in messages[4] and "at most 365" in messages[5]
    assert "differs from row 6" in messages[7]


def test_a_file_without_the_dropship_max_wait_column_still_imports_and_says_it_lacks_it() -> None:
    assert OPTIONAL_COLUMNS == ("dropship_max_wait_days",)
    header = [c for c in COLUMNS if c != "dropship_max_wait_days"]
    result = parse_supplier_csv(csv_with({}, header=header), known_skus=KNOWN)
    assert result.ok, [str(e) for e in result.errors]
    assert result.rows[0].dropship_max_wait_days is None
    assert "dropship_max_wait_days" not in result.columns  # so an import leaves saved values alone
