"""Sign in and sign out; forgotten passwords and the invitation/reset links that set one."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for

from connector.errors import ValidationError
from connector.services.accounts import (
    INVITE,
    LinkRefused,
    TooManyAttempts,
    account_link_user,
    authenticate,
    request_password_reset,
    set_password_from_link,
)
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
        form = Form(request.args)  # ?email= prefills the field after a password was set from a link
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


# The same answer whether or not the address has an account: the page must not tell.
RESET_SENT = "If this address has an account, an e-mail with a link to reset the password is on its way."


def _secret() -> str:
    return str(current_app.extensions["backorders.settings"].secret_key)


@pages.route("/password/forgot", methods=["GET", "POST"])
def password_forgot() -> Any:
    form = Form(request.form)
    if request.method == "GET":
        return render_template("pages/password_forgot.html", form=form, sent=False)
    email = form.email("email", required=True)
    if not form.ok or email is None:
        return render_template("pages/password_forgot.html", form=form, sent=False), 400
    try:
        request_password_reset(get_db(), email, request.remote_addr or "-", utcnow())
    except TooManyAttempts as exc:
        form.error("email", exc.message)
        return render_template("pages/password_forgot.html", form=form, sent=False), 429, {"Retry-After": "60"}
    return render_template("pages/password_forgot.html", form=form, sent=True)


@pages.route("/password/<token>", methods=["GET", "POST"])
def password_set(token: str) -> Any:
    headers = {"Referrer-Policy": "no-referrer"}  # the token is in this page's URL
    try:
        email, purpose = account_link_user(get_db(), _secret(), token, utcnow())
    except LinkRefused as exc:
        return render_template("pages/error.html", title="Link refused", message=exc.message), 400, headers
    form = Form(request.form)
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("confirm_password", ""):
            form.error("confirm_password", "the two passwords differ")
        if form.ok:
            try:
                set_password_from_link(get_db(), _secret(), token, password, utcnow())
            except ValidationError as exc:
                form.error("password", exc.message)
        if form.ok:
            session.clear()
            flash("your password is set: sign in with it", "ok")
            return redirect(url_for("pages.login", email=email))
    status = 200 if form.ok else 400
    return render_template("pages/password_set.html", form=form, email=email, invite=purpose == INVITE,
                           token=token), status, headers
