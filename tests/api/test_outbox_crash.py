"""The outbox worker killed mid-send (`kill -9` of `ledger serve` while the SMTP server has
the message but has not answered): after a restart the message is sent again, nothing is
lost, and the one duplicate carries the same Message-ID, so mail clients can tell."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.settings import Settings
from tests.api.test_checkout import stripe_body
from tests.api.test_inbox import paid_event, server_env
from tests.api.test_serve import free_port, ledger_command
from tests.api.test_webhooks_stripe import WEBHOOK, signed
from tests.fake_providers import FakeProviders
from tests.inbox import ADMIN
from tests.live import until
from tests.notify_servers import MailServer

TRAINER = {"email": "coach@example.kr", "channels": ["inbox", "email"]}


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.release()
        server.stop()


def serve(
    settings: Settings, smtp: MailServer, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**server_env(settings), "LEDGER_SMTP_URL": smtp.url,
           "LEDGER_MAIL_FROM": "ledger@ledger.test"}  # fmt: skip
    process = subprocess.Popen(
        [*ledger_command(), "serve", "--port", str(port)], cwd=workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    until(lambda: _healthy(base), "ledger serve answering")
    return process, base


def email_deliveries(base: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{base}/api/admin/notifications", params={"channel": "email"},
                     headers=ADMIN, timeout=10)  # fmt: skip
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def test_a_worker_killed_mid_send_sends_again_after_restart_with_the_same_message_id(
    settings: Settings, fake: FakeProviders, smtp: MailServer, tmp_path: Path
) -> None:
    process, base = serve(settings, smtp, tmp_path)
    try:
        put = httpx.put(f"{base}/api/admin/trainers/trainer-9/contact", json=TRAINER,
                        headers=ADMIN)  # fmt: skip
        assert put.status_code == 200, put.text
        assert httpx.post(f"{base}/api/payments", json=stripe_body()).status_code == 201
        smtp.hold_next()
        payload = paid_event(fake)
        assert httpx.post(f"{base}{WEBHOOK}", content=payload,
                          headers=signed(fake, payload)).status_code == 200  # fmt: skip
        until(smtp.holding.is_set, "the e-mail received, its answer held back")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    smtp.release()
    process, base = serve(settings, smtp, tmp_path)
    try:
        [delivery] = until(
            lambda: [d for d in email_deliveries(base) if d["status"] == "sent"],
            "the e-mail sent again after the restart",
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    copies = [mail for mail in smtp.received if TRAINER["email"] in mail.rcpt_tos]
    assert len(copies) == 2  # the one the killed worker sent, and the one after
    assert {mail.header("Message-ID") for mail in copies} == {
        copies[0].header("Message-ID")
    }  # fmt: skip
    assert delivery["message_id"] in copies[0].header("Message-ID")
    assert delivery["attempts"] == 1  # the killed attempt never got recorded: sent once more


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
