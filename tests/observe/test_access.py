"""Who gets into /metrics and /console: the admin token, sessions, CSRF, limits, headers."""

from __future__ import annotations

import re

import pytest
from flask.sessions import SecureCookieSessionInterface

from app import SettingError, create_app
from app.web import access
from tests.conftest import AES_KEY, BASE_CONFIG, TOKEN

ADMIN = "observe-admin-token-0123456789"
CONFIG = BASE_CONFIG | {"WECOM_ADMIN_TOKEN": ADMIN}


@pytest.fixture
def app():
    app = create_app(CONFIG)
    yield app
    app.extensions["wecom_history"].stop()
    app.extensions["wecom"].stop_background()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client, token: str = ADMIN):
    form = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(form.text), "token": token})


def test_without_an_admin_token_metrics_and_console_are_not_there():
    app = create_app(BASE_CONFIG)
    client = app.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404
    assert client.get("/console").status_code == 404
    assert client.get("/console/login").status_code == 404
    app.extensions["wecom"].stop_background()


@pytest.mark.parametrize("value", ["short", "has a space in it ok", "ünïcode-token-long-enough"])
def test_a_weak_admin_token_stops_start_up_naming_the_setting(value):
    with pytest.raises(SettingError) as info:
        create_app(BASE_CONFIG | {"WECOM_ADMIN_TOKEN": value})
    assert info.value.setting == "WECOM_ADMIN_TOKEN"
    assert value not in str(info.value)


def test_metrics_need_the_bearer_token(client, caplog):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + ADMIN[:-1] + "X"})
    assert wrong.status_code == 401
    basic = client.get("/metrics", headers={"Authorization": f"Basic {ADMIN}"})
    assert basic.status_code == 401
    right = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert right.status_code == 200
    assert right.mimetype == "text/plain"
    assert "wecom_callbacks_total" in right.text
    assert "wecom_dead_letters 0.0" in right.text
    assert "wecom_store_up 1.0" in right.text
    assert ADMIN not in caplog.text


def test_failed_bearer_tokens_are_limited_per_address(client):
    for _ in range(access.MAX_FAILURES):
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    limited = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    other = client.get(
        "/metrics",
        headers={"Authorization": f"Bearer {ADMIN}"},
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )
    assert other.status_code == 200


def test_console_redirects_to_login_and_logs_in_with_the_token(client):
    first = client.get("/console/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/console/login")
    wrong = login(client, "not-the-admin-token-at-all")
    assert wrong.status_code == 401 and "Wrong token" in wrong.text
    right = login(client)
    assert right.status_code == 302 and right.headers["Location"].endswith("/console/")
    assert client.get("/console/").status_code == 200


def test_sessions_exist_only_under_the_console_path(app):
    """A callback URL never opens a session (no signer built, no cookie read), the console
    does; a logged-in browser's cookie sent elsewhere changes nothing."""
    from flask import session
    from flask.sessions import NullSession

    with app.test_request_context("/", method="POST"):
        assert isinstance(session._get_current_object(), NullSession)
    with app.test_request_context("/console/"):
        assert not isinstance(session._get_current_object(), NullSession)
    client = app.test_client()
    assert login(client).status_code == 302
    health = client.get("/healthz")
    assert "Set-Cookie" not in health.headers
    assert client.get("/console/").status_code == 200  # still logged in


def test_session_cookie_flags_over_http_and_behind_tls(client, app):
    cookie = client.get("/console/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    tls = app.test_client()
    secure = tls.get("/console/login", base_url="https://wecom.example").headers["Set-Cookie"]
    assert "Secure" in secure and "HttpOnly" in secure


def test_logins_are_rate_limited(client):
    for _ in range(access.MAX_FAILURES):
        assert login(client, "wrong-token-wrong-token").status_code == 401
    assert login(client).status_code == 429  # even the right token, until the window passes


def test_state_changing_posts_need_the_csrf_token(client):
    assert login(client).status_code == 302
    for path in ("/console/dead/discard", "/console/dead/resend", "/console/logout"):
        refused = client.post(path, data={"key": "app:msg:1"})
        assert refused.status_code == 400, path
        assert "CSRF" in refused.text
    forged = client.post("/console/logout", data={"csrf": "forged"})
    assert forged.status_code == 400
    assert client.get("/console/").status_code == 200  # still logged in
    page = client.get("/console/dead").text
    out = client.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 302
    assert client.get("/console/").status_code == 302


def test_login_form_itself_needs_its_csrf_token(client):
    client.get("/console/login")
    refused = client.post("/console/login", data={"token": ADMIN})
    assert refused.status_code == 400
    assert client.get("/console/").status_code == 302


def test_security_headers_on_every_console_and_metrics_answer(client):
    login(client)
    for answer in (
        client.get("/console/login"),
        client.get("/console/"),
        client.get("/console/static/console.css"),
        client.get("/metrics"),
    ):
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        answer.close()


def test_pages_have_no_inline_script_or_style(client):
    login(client)
    for path in ("/", "/dead", "/pending", "/kf", "/endpoints", "/recent"):
        page = client.get("/console" + path).text
        assert "<script" not in page and "style=" not in page, path
        assert "http://" not in page.replace("http://www.w3.org/2000/svg", ""), path


def test_secret_key_is_derived_from_the_token_unless_given():
    derived = create_app(CONFIG)
    assert derived.secret_key == access.derived_secret_key(ADMIN)
    assert ADMIN not in derived.secret_key
    given = create_app(CONFIG | {"SECRET_KEY": "an-explicit-secret-key"})
    assert given.secret_key == "an-explicit-secret-key"
    for app in (derived, given):
        app.extensions["wecom"].stop_background()


def test_a_new_token_ends_old_sessions_even_with_a_fixed_secret_key():
    old = create_app(CONFIG | {"SECRET_KEY": "fixed-key"})
    client = old.test_client()
    login(client)
    cookie = client.get_cookie("wecom_console", path="/console").value
    new = create_app(CONFIG | {"SECRET_KEY": "fixed-key", "WECOM_ADMIN_TOKEN": ADMIN + "new"})
    other = new.test_client()
    other.set_cookie("wecom_console", cookie, path="/console")
    assert other.get("/console/").status_code == 302
    # A session forged without the key is refused too.
    forged = (
        SecureCookieSessionInterface()
        .get_signing_serializer(create_app(CONFIG | {"SECRET_KEY": "guess"}))
        .dumps({"admin": access.token_fingerprint(ADMIN)})
    )
    third = old.test_client()
    third.set_cookie("wecom_console", forged, path="/console")
    assert third.get("/console/").status_code == 302
    for app in (old, new):
        app.extensions["wecom"].stop_background()


def test_endpoints_page_masks_every_key(client):
    login(client)
    page = client.get("/console/endpoints").text
    assert "/" in page and "app" in page
    for secret in (TOKEN, AES_KEY, ADMIN):
        assert secret not in page
    assert f"set ({len(TOKEN)} characters)" in page
