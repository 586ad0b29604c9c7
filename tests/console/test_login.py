"""Signing in and out: messages, lockout, cookies, CSRF behind a TLS proxy."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from tests.console.conftest import OPERATOR, OPERATOR_PASSWORD
from voxhelm.config import Config
from voxhelm.console.forms import INACTIVE, INVALID_LOGIN, NOT_STAFF


def sign_in(client: Client, username: str, password: str, **extra: object) -> object:
    return client.post("/", {"username": username, "password": password}, **extra)  # type: ignore[arg-type]


def test_it_shows_the_sign_in_page_to_visitors(client: Client, db: None) -> None:
    page = client.get("/").content.decode()
    assert "Sign In" in page
    assert "Submit Transcript" not in page


def test_it_signs_in_an_operator_and_shows_the_console(client: Client, operator: User) -> None:
    response = sign_in(client, OPERATOR, OPERATOR_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Submit Transcript" in client.get("/").content.decode()


def test_it_refuses_a_wrong_password(client: Client, operator: User) -> None:
    response = sign_in(client, OPERATOR, "wrong")
    assert response.status_code == 200
    assert INVALID_LOGIN in response.content.decode()
    assert "Submit Transcript" not in client.get("/").content.decode()


def test_it_tells_a_non_staff_user_that_the_console_is_for_operators(
    client: Client, db: None
) -> None:
    User.objects.create_user("visitor", password="visitor-pass")
    response = sign_in(client, "visitor", "visitor-pass")
    assert NOT_STAFF in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_says_an_account_is_inactive_only_to_its_right_password(
    client: Client, operator: User
) -> None:
    operator.is_active = False
    operator.save()
    assert INACTIVE in sign_in(client, OPERATOR, OPERATOR_PASSWORD).content.decode()
    wrong = sign_in(client, OPERATOR, "wrong").content.decode()
    assert INVALID_LOGIN in wrong and INACTIVE not in wrong


def test_it_locks_out_after_five_failures_even_with_the_right_password(
    client: Client, operator: User
) -> None:
    for _ in range(4):
        assert sign_in(client, OPERATOR, "wrong").status_code == 200
    locked = sign_in(client, OPERATOR, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in locked.content.decode()
    again = sign_in(client, OPERATOR, OPERATOR_PASSWORD)
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session


def test_it_locks_out_a_client_address_across_usernames(client: Client, operator: User) -> None:
    for number in range(5):
        sign_in(client, f"guess{number}", "wrong")
    assert sign_in(client, OPERATOR, OPERATOR_PASSWORD).status_code == 429


def test_it_signs_in_behind_a_tls_proxy_with_trusted_origins_and_secure_cookies(
    operator: User, settings: object
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://voxhelm.example.com"]  # type: ignore[attr-defined]
    settings.ALLOWED_HOSTS = ["voxhelm.example.com"]  # type: ignore[attr-defined]
    browser = Client(enforce_csrf_checks=True)
    proxy = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "voxhelm.example.com"}
    page = browser.get("/", **proxy)
    csrf_cookie = page.cookies["csrftoken"]
    assert csrf_cookie["secure"] and csrf_cookie["httponly"] and csrf_cookie["samesite"] == "Lax"
    token = page.context["csrf_token"]
    response = browser.post(
        "/",
        {"username": OPERATOR, "password": OPERATOR_PASSWORD, "csrfmiddlewaretoken": str(token)},
        HTTP_ORIGIN="https://voxhelm.example.com",
        **proxy,
    )
    assert response.status_code == 302 and response["Location"] == "/"
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


def test_it_refuses_a_sign_in_without_a_csrf_token(operator: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/", {"username": OPERATOR, "password": OPERATOR_PASSWORD})
    assert response.status_code == 403


def test_it_keeps_cookies_without_secure_on_plain_http(client: Client, operator: User) -> None:
    response = sign_in(client, OPERATOR, OPERATOR_PASSWORD)
    assert not response.cookies["sessionid"]["secure"]
    assert response.cookies["sessionid"]["httponly"]


def test_it_follows_a_local_next_but_not_another_site(client: Client, operator: User) -> None:
    local = client.post("/", {"username": OPERATOR, "password": OPERATOR_PASSWORD, "next": "/jobs"})
    assert local["Location"] == "/jobs"
    client.logout()
    foreign = client.post(
        "/", {"username": OPERATOR, "password": OPERATOR_PASSWORD, "next": "https://evil.example/"}
    )
    assert foreign["Location"] == "/"


def test_it_signs_out_with_a_post(operator_client: Client) -> None:
    assert operator_client.get("/logout").status_code == 405
    response = operator_client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Sign In" in operator_client.get("/").content.decode()


def test_it_sends_a_visitor_who_signs_out_to_the_sign_in_page(client: Client, db: None) -> None:
    response = client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/?next=/logout"


def sign_in_from(client: Client, address: str, username: str, password: str) -> int:
    response = client.post("/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return int(response.status_code)


def test_strangers_on_rotating_addresses_cannot_lock_the_operator_out(
    client: Client, operator: User
) -> None:
    for number in range(20):  # four times the per-address count
        assert sign_in_from(client, f"203.0.113.{number}", OPERATOR, "wrong") == 200
    assert sign_in_from(client, "192.0.2.7", OPERATOR, OPERATOR_PASSWORD) == 302


def test_it_locks_a_username_everywhere_only_at_the_account_count(
    client: Client, operator: User, configure: Callable[..., Config]
) -> None:
    configure(VOXHELM_LOGIN_ACCOUNT_MAX_FAILURES="12")
    for number in range(12):
        sign_in_from(client, f"203.0.113.{number}", OPERATOR, "wrong")
    assert sign_in_from(client, "192.0.2.7", OPERATOR, OPERATOR_PASSWORD) == 429
    assert sign_in_from(client, "192.0.2.7", "someone-else", "wrong") == 200  # only that name


def test_a_signed_in_operator_lifts_the_lockouts(
    client: Client, operator: User, configure: Callable[..., Config]
) -> None:
    configure(VOXHELM_LOGIN_ACCOUNT_MAX_FAILURES="6")
    for number in range(6):
        sign_in_from(client, f"203.0.113.{number}", OPERATOR, "wrong")
    for _ in range(5):
        sign_in_from(client, "198.51.100.9", "guess", "wrong")
    assert sign_in_from(client, "192.0.2.7", OPERATOR, OPERATOR_PASSWORD) == 429
    operator_session = Client()
    operator_session.force_login(operator)
    page = operator_session.get("/").content.decode()
    assert "Sign-in is locked for 1 client address and 1 username" in page
    lifted = operator_session.post("/lockouts/lift")
    assert lifted.status_code == 302
    assert "Sign-in is locked" not in operator_session.get("/").content.decode()
    assert sign_in_from(client, "192.0.2.7", OPERATOR, OPERATOR_PASSWORD) == 302
    assert sign_in_from(Client(), "198.51.100.9", OPERATOR, OPERATOR_PASSWORD) == 302


def test_axes_reset_lifts_the_lockouts_from_a_shell(client: Client, operator: User) -> None:
    for _ in range(5):
        sign_in_from(client, "198.51.100.9", OPERATOR, "wrong")
    assert sign_in_from(client, "198.51.100.9", OPERATOR, OPERATOR_PASSWORD) == 429
    call_command("axes_reset", verbosity=0)
    assert sign_in_from(client, "198.51.100.9", OPERATOR, OPERATOR_PASSWORD) == 302
