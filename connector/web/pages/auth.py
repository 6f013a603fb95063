"""Sign in and sign out."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session, url_for

from connector.errors import ValidationError
from connector.services.accounts import TooManyAttempts, authenticate
from connector.web.pages import pages
from connector.web.pages.common import CSRF_FIELD, Form, get_db, utcnow


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an absolute or protocol-relative URL would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.dashboard")


@pages.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = Form(request.form)
    if request.method == "GET":
        return render_template("pages/login.html", form=form, next=request.args.get("next", ""))
    email = form.email("email", required=True)
    password = request.form.get("password", "")
    if not password:
        form.error("password", "enter your password")
    form.text("shop", max_length=255)
    if not form.ok:
        return render_template("pages/login.html", form=form, next=request.form.get("next", "")), 400
    assert email is not None
    try:
        user = authenticate(get_db(), email, password, request.remote_addr or "-", utcnow(),
                            shop_domain=form.values.get("shop"))
    except TooManyAttempts as exc:
        form.error("password", exc.message)
        response = render_template("pages/login.html", form=form, next=request.form.get("next", ""))
        return response, 429, {"Retry-After": "60"}
    except ValidationError as exc:
        form.error(exc.field or "password", exc.message)
        return render_template("pages/login.html", form=form, next=request.form.get("next", "")), 401
    # A fresh session on sign-in (no fixation); the CSRF token is renewed with it.
    session.clear()
    session["user_id"] = user.user_id
    session["shop_id"] = user.shop_id
    return redirect(_safe_next(request.form.get("next")))


@pages.post("/logout")
def logout() -> Any:
    session.clear()
    session.pop(CSRF_FIELD, None)
    return redirect(url_for("pages.login"))
