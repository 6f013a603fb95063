"""Render customer e-mails from Jinja2 templates, the shop's own edits taking precedence.

Default templates live in ``templates/<language>/<kind>.{subject.txt,txt,html}``. Merchants may
edit any part; their sources run in a :class:`~jinja2.sandbox.SandboxedEnvironment` (no access
to Python internals) with HTML autoescaping, so neither an edited template nor a customer
or product name can inject markup or code. Values are data: ``{{ 7*7 }}`` typed as a customer
name is printed as those characters, never evaluated.

Undefined variables are errors (``StrictUndefined``): a typo in an edited template must be
caught when the merchant saves it (:func:`check_override`), not produce a blank in a customer
e-mail.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from connector.errors import ValidationError
from connector.messages.dates import format_date
from connector.messages.model import (
    DEFAULT_LANGUAGE,
    KINDS,
    LANGUAGES,
    PARTS,
    MessageContext,
    MessageLine,
    RenderedEmail,
    ShopBranding,
)

TEMPLATE_DIR = Path(__file__).parent / "templates"


def resolve_language(language: str | None) -> str:
    """``fr-CA`` → ``fr``; anything we have no templates for → English."""
    base = (language or "").replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def template_name(kind: str, language: str, part: str) -> str:
    _check_kind_part(kind, part)
    return f"{language}/{kind}.{PARTS[part]}"


def default_source(kind: str, language: str, part: str) -> str:
    """The shipped template source, to show in the editor or to reset an override."""
    name = template_name(kind, resolve_language(language), part)
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


class _MerchantSandbox(SandboxedEnvironment):
    """The sandbox, plus a cap on ``*`` and ``**`` so ``{{ "x" * 10**9 }}`` cannot eat the memory."""

    intercepted_binops = frozenset({"*", "**"})
    MAX_REPEAT = 10_000

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponent too large in template")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > self.MAX_REPEAT:
                    raise SecurityError("repetition too large in template")
        return super().call_binop(context, operator, left, right)


@jinja2.pass_context
def _date_filter(context: jinja2.runtime.Context, value: date | None) -> str:
    return format_date(value, context.get("language", DEFAULT_LANGUAGE))


def _make_environment(overrides: Mapping[str, str] | None = None) -> _MerchantSandbox:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(TEMPLATE_DIR)]
    if overrides:
        loaders.insert(0, jinja2.DictLoader(dict(overrides)))
    env = _MerchantSandbox(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["date"] = _date_filter
    return env


@functools.cache
def _default_environment() -> _MerchantSandbox:
    return _make_environment()


def render(ctx: MessageContext, overrides: dict[str, str] | None = None) -> RenderedEmail:
    """Render subject, text and HTML of *ctx*.

    ``overrides`` maps a part (``"subject"``, ``"text"``, ``"html"``) to the merchant's template
    source for this kind and language; missing parts use the defaults. A broken override
    raises :class:`ValidationError` whose ``field`` is ``"<kind>.<part>"``.
    """
    if ctx.kind not in KINDS:
        raise ValidationError(f"unknown message kind {ctx.kind!r}", field="kind")
    language = resolve_language(ctx.language or ctx.shop.language)
    names = {part: template_name(ctx.kind, language, part) for part in PARTS}
    edited = {names[part]: source for part, source in (overrides or {}).items() if _check_part(part)}
    env = _make_environment(edited) if edited else _default_environment()
    variables = _variables(ctx, language)
    rendered: dict[str, str] = {}
    for part, name in names.items():
        try:
            template = env.get_template(name)
            rendered[part] = template.render(variables)
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError(
                f"template {ctx.kind}.{part} ({language}) has a syntax error on line {exc.lineno}: {exc.message}",
                field=f"{ctx.kind}.{part}",
                line=exc.lineno,
            ) from exc
        except (jinja2.TemplateError, TypeError, ValueError, AttributeError) as exc:
            if name not in edited:
                raise  # a shipped template failing is our bug, not the merchant's
            raise ValidationError(
                f"template {ctx.kind}.{part} ({language}) cannot be rendered: {exc}",
                field=f"{ctx.kind}.{part}",
            ) from exc
    return RenderedEmail(
        subject=" ".join(rendered["subject"].split()),
        text=rendered["text"].strip() + "\n",
        html=rendered["html"].strip() + "\n",
    )


def check_override(kind: str, language: str, part: str, source: str) -> RenderedEmail:
    """Render an edited template against a sample order; raise ValidationError if it breaks.

    Call this when the merchant saves, so mistakes show up in the editor, not in an e-mail.
    """
    _check_kind_part(kind, part)
    return render(sample_context(kind, language), {part: source})


def sample_context(kind: str, language: str = DEFAULT_LANGUAGE) -> MessageContext:
    """A realistic order for previews and override checks."""
    lang = resolve_language(language)
    lines = (
        MessageLine(
            "Oak table lamp",
            "LAMP-001",
            1,
            eta=date(2027, 3, 12),
            previous_eta=date(2027, 2, 26),
            release_date=date(2027, 3, 1),
        ),
        MessageLine(
            "Linen shade, natural",
            "SHADE-9",
            2,
            eta=date(2027, 3, 19),
            previous_eta=date(2027, 3, 5),
            release_date=date(2027, 3, 1),
        ),
    )
    return MessageContext(
        kind=kind,
        shop=ShopBranding(
            "Bois & Lumière",
            "https://shop.example/logo.png",
            "hello@shop.example",
            lang,
            "Bois & Lumière <hello@shop.example>",
        ),
        order_number="#1042",
        customer_name="Camille Martin",
        customer_email="camille@example.com",
        lines=lines,
        reason="Our supplier's workshop closed for a week." if kind == "delay_notice" else None,
        cancel_url="https://shop.example/apps/backorders/cancel?t=sample",
        keep_url="https://shop.example/apps/backorders/keep?t=sample",
        respond_by=date(2027, 3, 1),
        order_url="https://shop.example/account/orders/1042",
        tracking_number="1Z999AA10123456784",
        tracking_url="https://carrier.example/track/1Z999AA10123456784",
        carrier="UPS",
        language=lang,
    )


def _variables(ctx: MessageContext, language: str) -> dict[str, Any]:
    etas = [line.eta for line in ctx.lines if line.eta]
    releases = [line.release_date for line in ctx.lines if line.release_date]
    previous = [line.previous_eta for line in ctx.lines if line.previous_eta]
    values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}
    values.update(
        language=language,
        customer_name=ctx.customer_name or "",
        first_name=(ctx.customer_name or "").split(" ")[0],
        latest_eta=max(etas) if etas else None,
        latest_release_date=max(releases) if releases else None,
        latest_previous_eta=max(previous) if previous else None,
        units=sum(line.quantity for line in ctx.lines),
    )
    return values


def _check_part(part: str) -> bool:
    if part not in PARTS:
        raise ValidationError(f"unknown template part {part!r} (use subject, text or html)", field="part")
    return True


def _check_kind_part(kind: str, part: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"unknown message kind {kind!r}", field="kind")
    _check_part(part)


__all__ = [
    "MessageContext",
    "MessageLine",
    "RenderedEmail",
    "ShopBranding",
    "check_override",
    "default_source",
    "render",
    "resolve_language",
    "sample_context",
]
