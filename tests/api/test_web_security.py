"""Sign-in brute-force lockout, one Content-Security-Policy on every HTML page, and proxy headers believed only
from trusted proxies (issue 11, items 11 and 15)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from selenium.webdriver.common.by import By

from tests.conftest import policy_of, support_staff_group
from tests.support.browser import asgi_server, wait

PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.66"
SOMEONE_ELSE = "198.51.100.20"
LOGIN_PAGES = ["/admin/login/", "/dashboard/login/"]


@pytest.fixture
def accounts(db: None) -> None:
    users = get_user_model()
    users.objects.create_superuser("operator", "op@example.com", PASSWORD)
    users.objects.create_superuser("second", "second@example.com", PASSWORD)
    users.objects.create_user("sam", password=PASSWORD).groups.add(support_staff_group())


def sign_in(path: str, username: str, password: str, address: str) -> Any:
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    response.signed_in = "_auth_user_id" in client.session
    return response


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_repeated_wrong_passwords_lock_the_address_out(accounts: None, path: str, settings: Any) -> None:
    username = "sam" if path.startswith("/dashboard") else "operator"
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = sign_in(path, username, "wrong password", ATTACKER)
        assert response.status_code == 200  # the form again, with its error
        assert not response.signed_in
    locked = sign_in(path, username, "wrong password", ATTACKER)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    assert "Django administration" not in locked.content.decode()

    # The right password is refused too while locked out, and so is another account from that address.
    right = sign_in(path, username, PASSWORD, ATTACKER)
    assert right.status_code == 429
    assert not right.signed_in
    assert sign_in(path, "second", PASSWORD, ATTACKER).status_code == 429

    # Everyone else is unaffected, the same account included.
    elsewhere = sign_in(path, username, PASSWORD, SOMEONE_ELSE)
    assert elsewhere.status_code == 302
    assert elsewhere.signed_in


def test_lockout_ends_after_the_cool_off(accounts: None, settings: Any) -> None:
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/admin/login/", "operator", "wrong password", ATTACKER)
    assert sign_in("/admin/login/", "operator", PASSWORD, ATTACKER).status_code == 429
    # The cool-off counts from the last attempt: move every recorded attempt past it.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    after = sign_in("/admin/login/", "operator", PASSWORD, ATTACKER)
    assert after.status_code == 302
    assert after.signed_in


def test_failures_count_per_client_behind_the_proxy(accounts: None, settings: Any) -> None:
    """Behind a trusted proxy every client has its own count, not the proxy's address."""
    proxy = "127.0.0.1"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=ATTACKER).post(
            "/admin/login/", {"username": "operator", "password": "wrong"}
        )
    attacker = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert attacker.post("/admin/login/", {"username": "operator", "password": PASSWORD}).status_code == 429
    other = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"{SOMEONE_ELSE}, {proxy}")
    assert other.post("/admin/login/", {"username": "operator", "password": PASSWORD}).status_code == 302


# --- Content-Security-Policy --------------------------------------------------------------------------------


@pytest.fixture
def operator(accounts: None) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="operator"))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/login/",
        "/admin/",
        "/admin/apikeys/apikey/",
        "/admin/apikeys/apikey/add/",
        "/v1/docs",
        "/dashboard/login/",
        "/dashboard/",
        "/dashboard/search/",
    ],
)
def test_every_html_page_has_one_strict_policy(operator: Client, path: str) -> None:
    response = (Client() if path.endswith("/login/") else operator).get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert policy["connect-src"][:2] == ["'self'", "ws://testserver"]


def test_api_docs_load_no_inline_script(operator: Client) -> None:
    html = operator.get("/v1/docs").content.decode()
    assert "<script>" not in html
    script = operator.get("/v1/docs?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


# --- X-Forwarded-Proto ------------------------------------------------------------------------------------


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(db: None, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    client = Client(REMOTE_ADDR="203.0.113.9")
    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"


def test_forwarded_proto_from_a_trusted_proxy_counts(db: None, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    behind_proxy = Client(REMOTE_ADDR="10.1.2.3")
    assert behind_proxy.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert behind_proxy.get("/admin/login/").status_code == 301  # the proxy says plain HTTP: redirected
    assert Client(REMOTE_ADDR="127.0.0.1").get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 301


# --- In a browser: the pages work under the policy -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_admin_and_api_docs_work_in_a_browser_under_the_policy(tmp_path: Path, browser: Any, settings: Any) -> None:
    """Chromium reports every blocked script, style or connection in its console; there must be none."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # one the server knows
    get_user_model().objects.create_superuser("operator", "op@example.com", PASSWORD)
    with asgi_server(tmp_path) as server:
        visit_admin_and_docs(browser, server.url)
    blocked = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert blocked == []


def visit_admin_and_docs(driver: Any, base: str) -> None:
    driver.get(f"{base}/admin/login/")
    driver.find_element(By.ID, "id_username").send_keys("operator")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver, lambda d: d.current_url == f"{base}/admin/", what="the admin index")
    driver.get(f"{base}/admin/apikeys/apikey/add/")
    wait(driver, lambda d: d.find_elements(By.ID, "id_name"), what="the add form")
    driver.get(f"{base}/v1/docs")
    title = wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"), 15, "Swagger UI")[0]
    assert "RTCstack API" in title.text
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), 15, "the operations")
