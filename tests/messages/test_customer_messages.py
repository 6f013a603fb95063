from dataclasses import replace
from datetime import date
from html.parser import HTMLParser

import pytest
from message_samples import order_context

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from connector.errors import ValidationError
from connector.messages import (
    KINDS,
    LANGUAGES,
    MessageLine,
    check_override,
    customer_email,
    default_source,
    format_date,
    render,
    resolve_language,
)

ALL = [(kind, lang) for kind in KINDS for lang in LANGUAGES]
HOSTILE = "<script>alert('x')</script> {{ 7*7 }} {% if true %}yes{% endif %}"


class StrictHtml(HTMLParser):
    """Fails on unbalanced tags; collects text and hrefs."""

    VOID = {"br", "meta", "img", "hr", "link", "input", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:] or 'nothing'}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(source: str) -> StrictHtml:
    parser = StrictHtml()
    parser.feed(source)
    parser.close()
    assert parser.stack == [], f"unclosed tags: {parser.stack}"
    return parser


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_every_kind_renders_in_every_language_for_a_realistic_order(kind: str, language: str) -> None:
    ctx = order_context(kind, language)
    email = render(ctx)

    assert "#1042" in email.subject and "\n" not in email.subject
    html = parse_html(email.html)
    html_text = " ".join(html.text)
    for line in ctx.lines:
        assert line.title in email.text and line.title in html_text
    assert "Camille" in email.text and "Camille" in html_text
    assert "Bois & Lumière" in email.text and "Bois & Lumière" in html_text
    assert "{{" not in email.text + email.html and "{%" not in email.text + email.html
    assert f'lang="{language}"' in email.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_backorder_confirmation_gives_each_lines_promised_date(language: str) -> None:
    email = render(order_context("backorder_confirmation", language))
    for d in (date(2027, 3, 12), date(2027, 4, 2)):
        assert format_date(d, language) in email.text
        assert format_date(d, language) in email.html
    assert ("March 12, 2027" if language == "en" else "12 mars 2027") in email.text


def test_a_line_without_a_date_says_it_will_be_confirmed() -> None:
    ctx = order_context("backorder_confirmation", lines=(MessageLine("Oak lamp", "L1", 1),))
    email = render(ctx)
    assert "we will confirm the date" in email.text
    assert "This item is on backorder" in email.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_preorder_confirmation_gives_the_release_date(language: str) -> None:
    email = render(order_context("preorder_confirmation", language))
    assert format_date(date(2027, 3, 1), language) in email.text
    assert ("1er mars 2027" if language == "fr" else "March 1, 2027") in email.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_delay_notice_apologises_with_old_and_new_dates_reason_and_cancel_link(language: str) -> None:
    ctx = order_context("delay_notice", language)
    email = render(ctx)
    apology = "sorry" if language == "en" else "excuses"
    assert apology in email.subject.lower() and apology in email.text
    for line in ctx.lines:
        assert format_date(line.eta, language) in email.text
        assert format_date(line.previous_eta, language) in email.text
    assert "flood" in email.text and "flood" in email.html
    assert ctx.cancel_url in email.text
    assert ctx.cancel_url in parse_html(email.html).hrefs


def test_delay_notice_without_reason_or_cancel_link_leaves_them_out() -> None:
    email = render(order_context("delay_notice", reason=None, cancel_url=None))
    assert "What happened" not in email.text + email.html
    assert "cancel" not in email.text.lower()


@pytest.mark.parametrize("language", LANGUAGES)
def test_thirty_day_notice_offers_waiting_or_cancelling_for_a_refund(language: str) -> None:
    ctx = order_context("thirty_day_notice", language)
    email = render(ctx)
    hrefs = parse_html(email.html).hrefs
    assert ctx.cancel_url in hrefs and ctx.keep_url in hrefs
    assert ("full refund" if language == "en" else "intégralement remboursé") in email.text
    assert format_date(ctx.respond_by, language) in email.text
    assert ("firm shipping date" if language == "en" else "date d'expédition ferme") in email.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_shipped_notice_links_the_tracking(language: str) -> None:
    ctx = order_context("shipped_notice", language)
    email = render(ctx)
    assert "1Z999AA10123456784" in email.text
    assert ctx.tracking_url in parse_html(email.html).hrefs


def test_urls_with_ampersands_are_escaped_in_html_and_intact_in_text() -> None:
    email = render(order_context("delay_notice"))
    assert "cancel?order=1042&amp;sig=abc" in email.html
    assert "cancel?order=1042&sig=abc" in email.text


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_hostile_names_arrive_escaped_and_are_never_evaluated(kind: str, language: str) -> None:
    ctx = order_context(
        kind,
        language,
        customer_name=HOSTILE,
        reason=HOSTILE,
        lines=(
            MessageLine(
                HOSTILE,
                "SKU-<b>",
                1,
                eta=date(2027, 3, 12),
                previous_eta=date(2027, 3, 1),
                release_date=date(2027, 3, 1),
            ),
        ),
    )
    email = render(ctx)

    html = parse_html(email.html)
    assert "script" not in html.tags and "b" not in html.tags
    assert "&lt;script&gt;" in email.html
    assert "{{ 7*7 }}" in email.html and "{{ 7*7 }}" in email.text
    assert "49" not in email.html + email.text
    assert "{% if true %}yes{% endif %}" in email.text  # printed as typed
    assert HOSTILE in " ".join(html.text)


def test_an_override_is_used_for_its_part_and_defaults_fill_the_rest() -> None:
    ctx = order_context("delay_notice")
    email = render(ctx, {"subject": "Delay on {{ order_number }} - so sorry, {{ first_name }}!"})
    assert email.subject == "Delay on #1042 - so sorry, Camille!"
    assert email.text == render(ctx).text


def test_an_html_override_can_extend_the_shop_layout_and_is_autoescaped() -> None:
    source = (
        '{% extends "en/_layout.html" %}{% block content %}<p>Dear {{ customer_name }},'
        " new date {{ latest_eta|date }}</p>{% endblock %}"
    )
    email = render(order_context("delay_notice", customer_name="<i>Eve</i>"), {"html": source})
    parse_html(email.html)
    assert "Dear &lt;i&gt;Eve&lt;/i&gt;, new date April 2, 2027" in email.html
    assert "hello@bois.test" in email.html  # the layout's footer


def test_a_broken_override_raises_a_validation_error_naming_the_template() -> None:
    with pytest.raises(ValidationError) as caught:
        render(order_context("delay_notice"), {"html": "<p>{% if reason %}{{ reason }}</p>"})
    assert caught.value.field == "delay_notice.html"
    assert "delay_notice.html" in caught.value.message and "line" in caught.value.message


def test_an_override_using_an_unknown_variable_is_rejected_when_checked() -> None:
    with pytest.raises(ValidationError) as caught:
        check_override("ready_notice", "fr", "text", "Bonjour {{ custmer_name }}")
    assert caught.value.field == "ready_notice.text"
    assert "custmer_name" in caught.value.message


def test_an_override_cannot_reach_python_internals() -> None:
    with pytest.raises(ValidationError):
        render(order_context("ready_notice"), {"text": "{{ shop.__class__.__mro__ }}"})
    with pytest.raises(ValidationError):
        render(order_context("ready_notice"), {"text": "{{ lines.__class__.__subclasses__() }}"})


@pytest.mark.parametrize("source", ['{{ "x" * 10**9 }}', "{{ 10 ** 100000000 }}", "{{ [1] * 100000000 }}"])
def test_an_override_cannot_exhaust_memory(source: str) -> None:
    with pytest.raises(ValidationError):
        render(order_context("ready_notice"), {"text": source})


def test_unknown_override_parts_and_kinds_are_rejected() -> None:
    with pytest.raises(ValidationError):
        render(order_context("ready_notice"), {"body": "x"})
    with pytest.raises(ValidationError):
        render(order_context("not_a_kind"))


@pytest.mark.parametrize(("kind", "language"), ALL)
def test_default_sources_render_the_same_as_no_override(kind: str, language: str) -> None:
    ctx = order_context(kind, language)
    overrides = {part: default_source(kind, language, part) for part in ("subject", "text", "html")}
    assert render(ctx, overrides) == render(ctx)
    assert check_override(kind, language, "html", overrides["html"]).html


def test_dates_are_written_out_per_language_without_the_locale() -> None:
    assert format_date(date(2027, 8, 1), "en") == "August 1, 2027"
    assert format_date(date(2027, 8, 1), "fr") == "1er août 2027"
    assert format_date(date(2027, 12, 24), "fr") == "24 décembre 2027"
    assert format_date(None, "fr") == ""


def test_languages_resolve_regions_and_fall_back_to_english() -> None:
    assert resolve_language("fr-CA") == "fr" and resolve_language("fr_FR") == "fr"
    assert resolve_language("de") == "en" and resolve_language(None) == "en"
    email = render(replace(order_context("ready_notice", "en"), language="fr-BE"))
    assert "Bonne nouvelle" in email.subject


def test_rendered_message_arrives_through_real_smtp_with_both_parts() -> None:
    ctx = order_context("delay_notice", "fr", customer_name="Martin, Camille (VIP)")
    msg = customer_email(ctx, render(ctx), message_id="<delay-1042@bois.test>")
    with SmtpSink() as sink:
        SmtpMailer(sink.url).send(msg)
        [received] = sink.wait_for(1)
    assert received["To"].addresses[0].display_name == "Martin, Camille (VIP)"
    assert received["To"].addresses[0].addr_spec == "camille@example.com"
    assert received["Reply-To"] == "hello@bois.test"
    assert "retardée" in received["Subject"]
    assert "excuses" in received.get_body(("plain",)).get_content()
    parse_html(received.get_body(("html",)).get_content())


def test_customer_email_needs_a_sender_and_a_valid_address() -> None:
    ctx = order_context("ready_notice")
    with pytest.raises(ValidationError):
        customer_email(replace(ctx, customer_email="nobody"), render(ctx))
    with pytest.raises(ValidationError):
        customer_email(replace(ctx, shop=replace(ctx.shop, from_addr=None)), render(ctx))
