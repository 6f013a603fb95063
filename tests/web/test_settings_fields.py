"""The settings page fields the services read: each is saved and shown again, each bad value is
refused with its message next to the field, and a refused form saves nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from web_helpers import Seeded, post

from connector.db.engine import Database
from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.merchant_pages import save_shop_settings

BASE = {"handling_days": "1", "tolerance_days": "0", "default_lead_time_days": "14", "retention_days": "90",
        "tolerance_bands": "", "primary_color": "#1f5f8b", "background_color": "#ffffff", "text_color": "#222222"}

GOOD = {
    **BASE,
    "timezone": "Europe/Paris",
    "schedules_pull_store_mode": "every", "schedules_pull_store_every_minutes": "10",
    "schedules_consolidate_mode": "daily", "schedules_consolidate_daily_at": "06:00",
    "schedules_dropship_check_mode": "default", "schedules_dropship_check_every_minutes": "60",
    "language": "fr",
    "branding_logo_url": "https://cdn.example.com/logo.png", "branding_reply_to": "Help@Shop.example",
    "branding_from_addr": "orders@shop.example",
    "cancellation_mode": "storefront",
    "ship_to_name": "Atelier Dupont", "ship_to_address1": "12 rue des Lilas", "ship_to_city": "Lyon",
    "ship_to_zip": "69001", "ship_to_country_code": "fr",
    "thirty_day_auto_cancel_days": "14",
    "notify_by_backorder_confirmation": "email", "notify_by_delay_notice": "store_note",
    "notify_by_ready_notice": "off",
    "storefront_eta_format": "weeks",
}


def _shop(db: Database, shop_id: int) -> tuple[dict[str, Any], str]:
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.get(Shop, shop_id)
        assert shop is not None
        return dict(shop.settings or {}), shop.timezone


def _selected(page: str, name: str) -> str:
    block = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert block, name
    chosen = re.findall(r'<option value="([^"]*)" selected>', block.group(1))
    assert len(chosen) == 1, (name, chosen)
    return chosen[0]


def test_every_new_field_is_saved_and_shown_again(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    response = post(client, "/merchant/settings", GOOD)
    assert response.status_code == 302, response.text

    settings, timezone = _shop(db, seeded.shop_id)
    assert timezone == "Europe/Paris"
    assert settings["schedules"] == {"pull_store": {"every_minutes": 10}, "consolidate": {"daily_at": "06:00"}}
    assert settings["language"] == "fr"
    assert settings["branding"] == {"logo_url": "https://cdn.example.com/logo.png", "reply_to": "help@shop.example",
                                    "from_addr": "orders@shop.example"}
    assert settings["cancellation_mode"] == "storefront"
    assert settings["ship_to"] == {"name": "Atelier Dupont", "address1": "12 rue des Lilas", "city": "Lyon",
                                   "zip": "69001", "country_code": "FR"}
    assert settings["thirty_day_auto_cancel_days"] == 14
    assert settings["notify_by"]["delay_notice"] == "store_note" and settings["notify_by"]["ready_notice"] == "off"
    # The older switch follows, for code that reads only it.
    assert settings["emails"]["ready_notice"] is False and settings["emails"]["delay_notice"] is True
    assert settings["storefront_eta"] == {"format": "weeks"}

    page = client.get("/merchant/settings").text
    assert '<strong id="shop-timezone">Europe/Paris</strong>' in page
    assert _selected(page, "schedules_pull_store_mode") == "every"
    assert 'name="schedules_pull_store_every_minutes" type="number" value="10"' in page
    assert _selected(page, "schedules_consolidate_mode") == "daily"
    assert 'name="schedules_consolidate_daily_at" type="text" value="06:00"' in page
    assert _selected(page, "schedules_dropship_check_mode") == "default"
    assert _selected(page, "language") == "fr"
    assert 'value="https://cdn.example.com/logo.png"' in page and 'value="help@shop.example"' in page
    assert _selected(page, "cancellation_mode") == "storefront"
    assert 'value="Atelier Dupont"' in page and 'name="ship_to_country_code" type="text" value="FR"' in page
    assert 'name="thirty_day_auto_cancel_days" type="number" value="14"' in page
    assert _selected(page, "notify_by_delay_notice") == "store_note"
    assert _selected(page, "notify_by_ready_notice") == "off"
    assert _selected(page, "storefront_eta_format") == "weeks"


def test_blank_optional_fields_clear_the_setting(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    assert post(client, "/merchant/settings", GOOD).status_code == 302
    cleared = {k: ("" if k.startswith(("ship_to_", "branding_")) or k == "thirty_day_auto_cancel_days" else v)
               for k, v in GOOD.items()}
    cleared["schedules_consolidate_mode"] = "default"
    assert post(client, "/merchant/settings", cleared).status_code == 302
    settings, _ = _shop(db, seeded.shop_id)
    assert settings["ship_to"] is None  # purchase orders fall back to the shop's name
    assert settings["branding"] == {} and settings["thirty_day_auto_cancel_days"] is None
    assert settings["schedules"] == {"pull_store": {"every_minutes": 10}}


SELECTS = {"schedules_dropship_check_mode", "language", "cancellation_mode", "notify_by_delay_notice",
           "storefront_eta_format"}
BAD = [
    ({"branding_logo_url": "http://cdn.example.com/logo.png"}, "branding_logo_url"),
    ({"branding_logo_url": "javascript:alert(1)"}, "branding_logo_url"),
    ({"branding_reply_to": "not-an-address"}, "branding_reply_to"),
    ({"branding_from_addr": "a@b"}, "branding_from_addr"),
    ({"schedules_consolidate_daily_at": "25:00"}, "schedules_consolidate_daily_at"),
    ({"schedules_consolidate_daily_at": "6h"}, "schedules_consolidate_daily_at"),
    ({"schedules_pull_store_every_minutes": "-10"}, "schedules_pull_store_every_minutes"),
    ({"schedules_pull_store_every_minutes": "2"}, "schedules_pull_store_every_minutes"),
    ({"schedules_pull_store_every_minutes": ""}, "schedules_pull_store_every_minutes"),
    ({"schedules_dropship_check_mode": "hourly"}, "schedules_dropship_check_mode"),
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"language": "de"}, "language"),
    ({"cancellation_mode": "refund"}, "cancellation_mode"),
    ({"ship_to_country_code": "France"}, "ship_to_country_code"),
    ({"ship_to_name": ""}, "ship_to_name"),  # an address with nobody to deliver to
    ({"thirty_day_auto_cancel_days": "-3"}, "thirty_day_auto_cancel_days"),
    ({"thirty_day_auto_cancel_days": "0"}, "thirty_day_auto_cancel_days"),
    ({"thirty_day_auto_cancel_days": "soon"}, "thirty_day_auto_cancel_days"),
    ({"notify_by_delay_notice": "sms"}, "notify_by_delay_notice"),
    ({"storefront_eta_format": "days"}, "storefront_eta_format"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f"{f}={next(iter(c.values()))!r}" for c, f in BAD])
def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_saved(
    client: FlaskClient, db: Database, seeded: Seeded, change: dict[str, str], field: str
) -> None:
    before = _shop(db, seeded.shop_id)
    response = post(client, "/merchant/settings", {**GOOD, **change, "handling_days": "5"})
    assert response.status_code == 400
    error = re.search(rf'<span class="error" id="{field}-error" role="alert">([^<]+)</span>', response.text)
    assert error, f"no error next to {field}"
    assert response.text.count('class="error"') == 1  # only the bad field complains
    assert _shop(db, seeded.shop_id) == before  # not even the good handling_days
    # What was typed is shown again, to be corrected rather than retyped.
    typed = next(iter(change.values()))
    if typed and field not in SELECTS:
        assert f'name="{field}" type="' in response.text and f'value="{typed}"' in response.text


def test_several_bad_fields_are_all_reported_at_once(client: FlaskClient, seeded: Seeded) -> None:
    response = post(client, "/merchant/settings", {**GOOD, "branding_reply_to": "x", "timezone": "Nowhere/Land",
                                                   "schedules_consolidate_daily_at": "24:00"})
    assert response.status_code == 400
    for field in ("branding_reply_to", "timezone", "schedules_consolidate_daily_at"):
        assert f'id="{field}-error"' in response.text, field


def test_a_form_from_before_the_selectors_still_switches_emails_on_and_off(
    client: FlaskClient, db: Database, seeded: Seeded
) -> None:
    old_form = {**BASE, "email_backorder_confirmation": "1"}
    assert post(client, "/merchant/settings", old_form).status_code == 302
    settings, _ = _shop(db, seeded.shop_id)
    assert settings["notify_by"]["backorder_confirmation"] == "email"
    assert settings["notify_by"]["delay_notice"] == "off" and settings["emails"]["delay_notice"] is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedules": {"consolidate": {"daily_at": "25:00"}}}, "schedules.consolidate.daily_at"),
        ({"schedules": {"retention": {"every_minutes": 60}}}, "schedules.retention"),
        ({"branding": {"logo_url": "ftp://x.example/l.png"}}, "branding.logo_url"),
        ({"branding": {"colour": "red"}}, "branding.colour"),
        ({"ship_to": {"name": "A", "planet": "Mars"}}, "ship_to.planet"),
        ({"thirty_day_auto_cancel_days": True}, "thirty_day_auto_cancel_days"),
        ({"notify_by": {"nope": "email"}}, "notify_by.nope"),
        ({"storefront_eta": {"format": "hidden", "x": 1}}, "storefront_eta.x"),
        ({"timezone": "UTC+2"}, "timezone"),
    ],
)
def test_the_service_refuses_what_the_page_cannot_send(
    db: Database, seeded: Seeded, changes: dict[str, Any], field: str
) -> None:
    before = _shop(db, seeded.shop_id)
    with pytest.raises(ValidationError) as caught:
        save_shop_settings(db, seeded.shop_id, changes)
    assert caught.value.field == field
    assert _shop(db, seeded.shop_id) == before
