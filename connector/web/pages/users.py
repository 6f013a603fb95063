"""Settings › Users: the shop's users, invitations, removal and the signed-in user's password.

Inside the Shopify admin (``g.embedded``) nobody signs in with a password: the page still lists,
invites and removes users (for sign-ins outside the admin), but has no password form.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from connector.errors import ValidationError
from connector.services.accounts import change_password, invite_user, list_users, remove_user
from connector.web.pages import pages
from connector.web.pages.common import Form, get_db, shop_id, utcnow


def _page(invite: Form | None = None, password: Form | None = None, status: int = 200) -> Any:
    return render_template("pages/users.html", users=list_users(get_db(), shop_id()), invite=invite,
                           password=password, me=g.get("user_id")), status


@pages.get("/settings/users")
def users() -> Any:
    return _page()


@pages.post("/settings/users/invite")
def user_invite() -> Any:
    form = Form(request.form)
    email = form.email("email", required=True)
    if form.ok and email:
        try:
            invite_user(get_db(), shop_id(), email, utcnow())
        except ValidationError as exc:
            form.error(exc.field or "email", exc.message)
    if not form.ok:
        return _page(invite=form, status=400)
    flash(f"invitation sent to {email}", "ok")
    return redirect(url_for("pages.users"))


@pages.post("/settings/users/<int:user_id>/remove")
def user_remove(user_id: int) -> Any:
    try:
        email = remove_user(get_db(), shop_id(), user_id, g.get("user_id"))
    except ValidationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.users"))
    flash(f"{email} removed", "ok")
    return redirect(url_for("pages.users"))


@pages.post("/settings/users/password")
def user_password() -> Any:
    user_id = g.get("user_id")
    if user_id is None:  # inside the Shopify admin: there is no password to change
        raise ValidationError("inside the Shopify admin you sign in with Shopify, not a password")
    form = Form(request.form)
    current, new = request.form.get("current_password", ""), request.form.get("new_password", "")
    if not current:
        form.error("current_password", "enter your current password")
    if new != request.form.get("confirm_password", ""):
        form.error("confirm_password", "the two new passwords differ")
    if form.ok:
        try:
            change_password(get_db(), shop_id(), user_id, current, new)
        except ValidationError as exc:
            form.error("new_password" if exc.field == "password" else (exc.field or "new_password"), exc.message)
    if not form.ok:
        return _page(password=form, status=400)
    flash("your password is changed", "ok")
    return redirect(url_for("pages.users"))
