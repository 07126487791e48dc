"""Contact details over HTTP, on SQLite and PostgreSQL: kept outside the event history,
replaced, read, erased; checkout's customer fields; Web Push subscriptions; what is refused.

Every case also checks that nothing was appended: contacts are personal data, never events.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import issue_trainer_token
from ledger.application import PaymentLedger
from ledger.settings import Settings
from store.contacts import ContactBook, PushSubscriptionRow
from tests.api.test_audit_cli import ledger_cli
from tests.api.test_audit_routes import all_events
from tests.api.test_checkout import assert_error, payment_body
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}
TRAINER_CONTACT = "/api/admin/trainers/trainer-9/contact"
CUSTOMER_CONTACT = "/api/admin/customers/cust-5/contact"
PUSH = "/api/trainers/trainer-9/push-subscriptions"
# The user agent's keys of RFC 8291's worked example (section 5): a real P-256 point.
P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
ENDPOINT = "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV"


@pytest.fixture
def settings(database_url: str, fake: FakeProviders) -> Settings:
    # This deployment's push service (LEDGER_PUSH_ENDPOINTS), where ENDPOINT points.
    return make_settings(database_url, fake, push_endpoints=("https://push.example.net/push/",))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


POINT = base64.urlsafe_b64decode(P256DH + "=")
OFF_CURVE = b64url(b"\x04" + (1).to_bytes(32) + (1).to_bytes(32))  # (1, 1) is not on P-256


def contacts(client: TestClient) -> ContactBook:
    book: ContactBook = client.app.state.services.contacts  # type: ignore[attr-defined]
    return book


def trainer_token(settings: Settings, trainer_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_trainer_token(settings, trainer_id)}"}


def subscription(endpoint: str = ENDPOINT, **keys: str) -> dict[str, Any]:
    keys = {"p256dh": P256DH, "auth": AUTH, **keys}
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys}


def put(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.put(path, json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_trainer_contact_is_replaced_read_and_erased_without_an_event(
    client: TestClient, ledger: PaymentLedger
) -> None:
    full = {
        "email": "coach@example.com",
        "phone": "+821012345678",
        "channels": ["email", "push"],
        "locale": "en",
    }
    assert put(client, TRAINER_CONTACT, full) == {
        "role": "trainer",
        "party_id": "trainer-9",
        "email": "coach@example.com",
        "phone": "+821012345678",
        "locale": "en",
        "channels": ["email", "push"],
        "push_subscriptions": [],
    }
    assert client.get(TRAINER_CONTACT, headers=AUDITOR).json()["email"] == "coach@example.com"

    replaced = put(client, TRAINER_CONTACT, {"email": "new@example.com"})
    assert (replaced["email"], replaced["phone"], replaced["channels"], replaced["locale"]) == (
        "new@example.com",
        None,
        None,
        "ko",
    )
    assert client.get(TRAINER_CONTACT, headers=ADMIN).json() == replaced

    assert client.delete(TRAINER_CONTACT, headers=ADMIN).status_code == 204
    assert_error(client.get(TRAINER_CONTACT, headers=ADMIN), 404, "unknown_contact")
    assert event_topics(ledger) == []


def test_erasing_a_customer_contact_is_idempotent(
    client: TestClient, ledger: PaymentLedger
) -> None:
    put(client, CUSTOMER_CONTACT, {"email": "minji@example.com", "phone": "+821099998888"})
    assert client.get(CUSTOMER_CONTACT, headers=AUDITOR).json()["phone"] == "+821099998888"
    assert client.delete(CUSTOMER_CONTACT, headers=ADMIN).status_code == 204
    assert_error(client.get(CUSTOMER_CONTACT, headers=ADMIN), 404, "unknown_contact")
    assert client.delete(CUSTOMER_CONTACT, headers=ADMIN).status_code == 204  # nothing there
    assert contacts(client).get("customer", "cust-5") is None
    assert event_topics(ledger) == []


def test_an_auditor_reads_contacts_but_may_not_change_them(
    client: TestClient, settings: Settings
) -> None:
    put(client, CUSTOMER_CONTACT, {"email": "minji@example.com"})
    assert client.get(CUSTOMER_CONTACT, headers=AUDITOR).status_code == 200
    assert_error(client.put(CUSTOMER_CONTACT, json={}, headers=AUDITOR), 403, "forbidden")
    assert_error(client.delete(CUSTOMER_CONTACT, headers=AUDITOR), 403, "forbidden")
    trainer = trainer_token(settings, "trainer-9")
    assert_error(client.get(TRAINER_CONTACT, headers=trainer), 403, "forbidden")
    assert client.get(CUSTOMER_CONTACT, headers=ADMIN).json()["email"] == "minji@example.com"


def test_checkout_keeps_the_customer_contact_outside_the_events(
    client: TestClient, ledger: PaymentLedger
) -> None:
    body = payment_body(
        customer_email="minji@example.com", customer_phone="+821055554444", customer_locale="en"
    )
    created = client.post("/api/payments", json=body)
    assert created.status_code == 201, created.text
    contact = client.get(CUSTOMER_CONTACT, headers=ADMIN).json()
    assert (contact["email"], contact["phone"], contact["locale"]) == (
        "minji@example.com",
        "+821055554444",
        "en",
    )
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    stored = json.dumps(all_events(client, ledger), ensure_ascii=False)
    assert "minji@example.com" not in stored and "+821055554444" not in stored


def test_contact_fields_do_not_change_the_idempotency_of_checkout(
    client: TestClient, ledger: PaymentLedger
) -> None:
    first = client.post("/api/payments", json=payment_body())
    assert first.status_code == 201, first.text
    with_email = client.post("/api/payments", json=payment_body(customer_email="a@example.com"))
    with_phone = client.post("/api/payments", json=payment_body(customer_phone="+821012341234"))
    for again in (with_email, with_phone):
        assert again.status_code == 200, again.text
        assert again.json()["payment_id"] == first.json()["payment_id"]
    # Merged: the order with a phone kept the e-mail the one before had given.
    contact = contacts(client).get("customer", "cust-5")
    assert contact is not None and (contact.email, contact.phone) == (
        "a@example.com",
        "+821012341234",
    )
    # Checkout needs no token: an order naming the customer cannot redirect their messages.
    someone = payment_body(customer_email="someone@example.net", customer_phone="+15005550006")
    assert client.post("/api/payments", json=someone).status_code == 200
    assert contacts(client).get("customer", "cust-5") == contact
    other = payment_body(amount=1, customer_email="b@example.com")
    assert_error(client.post("/api/payments", json=other), 409)
    assert contacts(client).get("customer", "cust-5") == contact  # a refused order stores nothing
    assert event_topics(ledger) == ["Initiated", "Claimed"]


# A digit to `\d` in pydantic's regex engine, but not one a phone network dials.
ARABIC_INDIC_PHONE = "+8" + "".join(chr(0x0660 + int(digit)) for digit in "2101234567")
BAD_CONTACTS = [
    (TRAINER_CONTACT, {"email": "not-an-address"}),
    (TRAINER_CONTACT, {"email": "Coach <coach@example.com>"}),
    (TRAINER_CONTACT, {"email": "coach@localhost"}),
    (TRAINER_CONTACT, {"email": f"{'c' * 65}@example.com"}),
    (TRAINER_CONTACT, {"phone": "010-1234-5678"}),
    (TRAINER_CONTACT, {"phone": "+0101234567"}),
    (TRAINER_CONTACT, {"phone": ARABIC_INDIC_PHONE}),
    (TRAINER_CONTACT, {"channels": ["email", "fax"]}),
    (TRAINER_CONTACT, {"locale": "ja"}),
    (CUSTOMER_CONTACT, {"email": "minji@@example.com"}),
    (CUSTOMER_CONTACT, {"phone": "+82 10 1234 5678"}),
    (CUSTOMER_CONTACT, {"channels": ["email"]}),  # a customer has no channel choice
]


@pytest.mark.parametrize(("path", "body"), BAD_CONTACTS)
def test_malformed_contact_details_are_refused_and_store_nothing(
    client: TestClient, ledger: PaymentLedger, path: str, body: dict[str, Any]
) -> None:
    assert_error(client.put(path, json=body, headers=ADMIN), 422, "validation_error")
    assert_error(client.get(path, headers=ADMIN), 404)
    assert event_topics(ledger) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"customer_email": "minji.example.com"},
        {"customer_phone": "821012345678"},
        {"customer_locale": "fr"},
    ],
)
def test_checkout_refuses_malformed_customer_contact(
    client: TestClient, ledger: PaymentLedger, fields: dict[str, str]
) -> None:
    assert_error(client.post("/api/payments", json=payment_body(**fields)), 422, "validation_error")
    assert event_topics(ledger) == []
    assert contacts(client).get("customer", "cust-5") is None


BAD_SUBSCRIPTIONS = [
    subscription(endpoint="ftp://push.example.net/push/abc"),
    subscription(endpoint="not a url"),
    subscription(endpoint="https:///no-host"),
    subscription(endpoint="https://push.example.net:port/abc"),
    subscription(p256dh=b64url(POINT[:64])),
    subscription(p256dh=b64url(b"\x02" + POINT[1:33])),  # compressed
    subscription(p256dh=b64url(b"\x00" + POINT[1:])),
    subscription(p256dh=OFF_CURVE),
    subscription(p256dh=P256DH.replace("-", "+").replace("_", "/")),  # base64, not base64url
    subscription(auth=b64url(bytes(15))),
    {"endpoint": ENDPOINT},
]


@pytest.mark.parametrize("body", BAD_SUBSCRIPTIONS)
def test_what_is_not_a_web_push_subscription_is_refused(
    client: TestClient, ledger: PaymentLedger, settings: Settings, body: dict[str, Any]
) -> None:
    answer = client.post(PUSH, json=body, headers=trainer_token(settings, "trainer-9"))
    assert_error(answer, 422, "validation_error")
    assert contacts(client).get("trainer", "trainer-9") is None
    assert event_topics(ledger) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/push/abc",  # not the https of the service
        "https://push.example.net.attacker.io/push/abc",
        "https://push.example.net/admin",  # outside the service's path
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:5432/",
    ],
)
def test_an_endpoint_that_is_no_push_service_of_this_deployment_is_refused(
    client: TestClient, ledger: PaymentLedger, settings: Settings, endpoint: str
) -> None:
    """The ledger POSTs to a subscription's endpoint: it must not be aimable inside."""
    answer = client.post(PUSH, json=subscription(endpoint=endpoint),
                         headers=trainer_token(settings, "trainer-9"))  # fmt: skip
    assert_error(answer, 422, "push_endpoint_not_allowed")
    assert contacts(client).get("trainer", "trainer-9") is None
    assert event_topics(ledger) == []


def test_a_trainer_registers_only_its_own_browsers(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    other = client.post(PUSH, json=subscription(), headers=trainer_token(settings, "trainer-8"))
    assert_error(other, 403, "forbidden")
    assert_error(client.post(PUSH, json=subscription()), 401, "unauthorized")
    assert contacts(client).get("trainer", "trainer-9") is None
    own = client.post(PUSH, json=subscription(), headers=trainer_token(settings, "trainer-9"))
    assert own.status_code == 201, own.text
    assert own.json() == {"trainer_id": "trainer-9", "endpoint": ENDPOINT}
    assert event_topics(ledger) == []


def test_a_push_subscription_is_kept_once_per_endpoint(
    client: TestClient, settings: Settings
) -> None:
    headers = trainer_token(settings, "trainer-9")
    padded_auth = "QUJDREVGR0hJSktMTU5PUA=="  # 16 bytes, padded: stored unpadded
    for body in (subscription(), subscription(auth=padded_auth)):
        assert client.post(PUSH, json=body, headers=headers).status_code == 201
    put(client, TRAINER_CONTACT, {"email": "coach@example.com"})  # keeps the subscriptions
    book = contacts(client)
    trainer = book.get("trainer", "trainer-9")
    assert trainer is not None
    assert trainer.push == (PushSubscriptionRow(ENDPOINT, P256DH, padded_auth.rstrip("=")),)
    assert client.get(TRAINER_CONTACT, headers=ADMIN).json()["push_subscriptions"] == [
        {"endpoint": ENDPOINT}
    ]
    # The same browser signed in as another trainer: the endpoint moves.
    assert (
        client.post(
            PUSH.replace("trainer-9", "trainer-8"), json=subscription(), headers=ADMIN
        ).status_code
        == 201
    )
    moved = book.get("trainer", "trainer-8")
    assert moved is not None and [row.endpoint for row in moved.push] == [ENDPOINT]
    left = book.get("trainer", "trainer-9")
    assert left is not None and left.push == ()  # its e-mail stays
    # Gone at the push service: the outbox forgets it.
    assert book.remove_push_subscription(ENDPOINT) is True
    assert book.remove_push_subscription(ENDPOINT) is False
    assert book.get("trainer", "trainer-8") is None


def test_erasing_a_trainer_contact_erases_its_push_subscriptions(
    client: TestClient, settings: Settings
) -> None:
    client.post(PUSH, json=subscription(), headers=trainer_token(settings, "trainer-9"))
    assert client.get(TRAINER_CONTACT, headers=ADMIN).status_code == 200  # push only
    assert client.delete(TRAINER_CONTACT, headers=ADMIN).status_code == 204
    assert contacts(client).get("trainer", "trainer-9") is None


def test_erasing_contacts_leaves_the_audit_chain_intact(
    client: TestClient, ledger: PaymentLedger, database_url: str
) -> None:
    body = payment_body(customer_email="minji@example.com", customer_phone="+821055554444")
    assert client.post("/api/payments", json=body).status_code == 201
    put(client, TRAINER_CONTACT, {"email": "coach@example.com", "channels": ["email"]})
    events = all_events(client, ledger)  # the chain has caught up
    before = client.get("/api/audit/verify", headers=AUDITOR).json()
    assert client.delete(CUSTOMER_CONTACT, headers=ADMIN).status_code == 204
    assert client.delete(TRAINER_CONTACT, headers=ADMIN).status_code == 204
    after = client.get("/api/audit/verify", headers=AUDITOR).json()
    assert after == before and after["ok"] is True
    assert after["events_checked"] == len(events) == len(event_topics(ledger))
    verified = ledger_cli(database_url, "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"ok: {len(events)} events checked" in verified.stdout
