"""A real HTTP server imitating the slices of Toss Payments and Stripe our service calls.

Tests point the real ``httpx`` client and the real ``stripe`` SDK at ``FakeProviders.base_url``
so request encoding, auth headers, error parsing and timeouts are exercised end to end instead
of being mocked away.

Built on stdlib ``ThreadingHTTPServer`` rather than uvicorn: no event loop to manage from a
test thread, shutdown is synchronous, and a deliberately slow handler only blocks its own thread.

Shapes follow the public docs (Toss API version 2022-11-16, Stripe v1):
- Toss Payment objects carry ``cancels: null`` (not ``[]``) until the first cancel, as Toss does.
- Toss errors are ``{"code", "message"}`` with a 4xx/5xx status.
- Stripe errors are ``{"error": {"type", "code", "message", "param"}}``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import stripe

KST = timezone(timedelta(hours=9))

Provider = Literal["toss", "stripe"]

# Toss answers in Korean; the messages are copied in spirit so logs read like production.
_TOSS_MSG_NOT_FOUND = "존재하지 않는 결제 정보 입니다."
_TOSS_MSG_ALREADY_PROCESSED = "이미 처리된 결제 입니다."
_TOSS_MSG_INVALID = "잘못된 요청입니다."
_TOSS_MSG_UNAUTHORIZED = "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."
_TOSS_MSG_INTERNAL = "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요."

_TOSS_CONFIRMABLE = frozenset({"READY", "IN_PROGRESS"})
_TOSS_ALREADY_PROCESSED = frozenset({"DONE", "CANCELED", "PARTIAL_CANCELED", "WAITING_FOR_DEPOSIT"})
_TOSS_CANCELABLE = frozenset({"DONE", "PARTIAL_CANCELED", "WAITING_FOR_DEPOSIT"})
_TOSS_ROOTS = frozenset({"/v1/payments", "/v1/settlements"})
# What the fakes keep of a payment: Toss 3 % plus VAT on it, Stripe 2.9 % + 30 minor units.
_TOSS_FEE_BPS = 300
_STRIPE_FEE_BPS, _STRIPE_FEE_FIXED = 290, 30
_STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


def _kst_now() -> str:
    # Toss timestamps are second-precision ISO-8601 with an explicit +09:00 offset.
    return datetime.now(KST).isoformat(timespec="seconds")


def _toss_event_time() -> str:
    # Webhook envelopes use a local (KST) timestamp without offset, microsecond precision.
    return datetime.now(KST).replace(tzinfo=None).isoformat(timespec="microseconds")


def _toss_transaction_key() -> str:
    return uuid.uuid4().hex.upper()


def _stripe_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _json_bytes(obj: Any) -> bytes:
    # An unpaired surrogate goes out as JSON's own `\\udXXX` escape, as any JSON library sends it.
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "backslashreplace")


def _decode_stripe_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``metadata[order_id]=x`` style keys (stripe's form encoding) into nested dicts."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if "[" in key and key.endswith("]"):
            head, _, rest = key.partition("[")
            parts = [head, *rest[:-1].split("][")]
        else:
            parts = [key]
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # scalar then nested under same key: keep last
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    json: Any | None  # parsed when the body is JSON
    form: dict[str, Any] | None  # parsed (nested) when the body is form-encoded
    provider: Provider | None  # which fake answered it; None for unrouted paths

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Failure:
    status: int
    delay: float
    code: str | None = None
    message: str | None = None


@dataclass
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Never join handler threads on close: a handler may be sleeping to simulate a timeout.
    block_on_close = False

    def __init__(self, fake: FakeProviders) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive threads outlive stop().
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Keep pytest output clean; the fake records requests itself.
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        response = self.server.fake._handle(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        if response is None:  # server stopped while the handler was sleeping
            return
        payload = _json_bytes(response.body)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout test); nothing left to do.
            pass


class FakeProviders:
    """Fake Toss Payments + Stripe API on one local port.

    Toss lives under ``/v1/payments``; everything else under ``/v1`` is treated as Stripe.
    All state is guarded by one lock so handler threads and test code can interleave safely.
    """

    def __init__(
        self,
        toss_secret_key: str = "test_sk_fake",
        stripe_api_key: str = "sk_test_fake",
        stripe_webhook_secret: str = "whsec_test_fake",
    ) -> None:
        self.toss_secret_key = toss_secret_key
        self.stripe_api_key = stripe_api_key
        self.stripe_webhook_secret = stripe_webhook_secret
        self.base_url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        # Wakes list requests held by `stripe_hold_refund_lists` when a refund is created.
        self._refund_created = threading.Condition(self._lock)
        # Wakes Toss payment reads held by `toss_hold_reads` when another one arrives.
        self._toss_reads_moved = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._server is not None:
            return
        self._stopping.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-providers",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a `delay`
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeProviders:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._reset_state()
            self._toss_reads_moved.notify_all()  # a read still held goes on

    def _reset_state(self) -> None:
        self._toss_payments: dict[str, dict[str, Any]] = {}
        self._toss_failures: list[_Failure] = []
        self._toss_lost_answers: list[_Failure] = []
        self._toss_confirm_failures: list[_Failure] = []
        self._toss_va_secrets: list[str] = []
        self._toss_cancel_statuses: list[str] = []
        self._toss_idempotency: dict[str, _Response] = {}
        self._stripe_sessions: dict[str, dict[str, Any]] = {}
        self._stripe_refunds: list[dict[str, Any]] = []
        self._stripe_refund_statuses: list[str] = []
        self._stripe_list_hold: int | None = None
        self._stripe_failures: list[_Failure] = []
        self._stripe_idempotency: dict[str, tuple[bytes, _Response]] = {}
        self._stripe_disputes: list[dict[str, Any]] = []
        self._toss_extra_settlements: list[dict[str, Any]] = []
        self._unsettled: set[str] = set()  # payment keys / PaymentIntents left off reports
        self._toss_read_failures: dict[str, tuple[int, int | None]] = {}
        self._toss_read_hold: tuple[int, float] | None = None  # (together, seconds)
        self._toss_reads_in_flight = 0
        self._toss_most_reads_in_flight = 0
        self._toss_reads_held_in_vain = 0

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self._requests
                if r.method == method.upper() and r.path.startswith(path_prefix)
            ]

    def provider_calls(self, provider: Provider) -> list[RecordedRequest]:
        """Everything that reached one provider: ``assert not fake.provider_calls("toss")``."""
        with self._lock:
            return [r for r in self._requests if r.provider == provider]

    # ------------------------------------------------------------------ Toss setup

    def toss_payment(
        self,
        payment_key: str,
        order_id: str,
        amount: int,
        status: str = "READY",
        method: str = "카드",
        secret: str | None = None,
        currency: str = "KRW",
    ) -> dict[str, Any]:
        """Register (or overwrite) a Toss Payment object; returns a copy of it."""
        with self._lock:
            payment = self._new_toss_payment(payment_key, order_id, amount, method, currency)
            payment["secret"] = secret
            self._toss_payments[payment_key] = payment
            return self.toss_set_status(payment_key, status)

    def toss_set_status(
        self, payment_key: str, status: str, cancels: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Move a known payment to `status`, keeping the object internally consistent.

        `cancels` replaces the cancel history (missing fields are filled in) and
        ``balanceAmount`` is recomputed from it. CANCELED without any cancel history gets
        one full-amount cancel synthesised, because a real CANCELED payment always has one.
        """
        with self._lock:
            p = self._toss_payments[payment_key]
            # A virtual account cancelled before its deposit was never approved.
            unpaid_cancel = status == "CANCELED" and p["status"] == "WAITING_FOR_DEPOSIT"
            if status == "WAITING_FOR_DEPOSIT" and p["status"] == "DONE":
                p["lastTransactionKey"] = _toss_transaction_key()  # a deposit error
            p["status"] = status
            if cancels is not None:
                filled, balance = [], p["totalAmount"]
                for c in cancels:
                    balance -= int(c["cancelAmount"])
                    filled.append(self._fill_cancel({"refundableAmount": balance, **c}))
                p["cancels"] = filled or None
            if status == "CANCELED" and not p["cancels"]:
                p["cancels"] = [self._fill_cancel({"cancelAmount": p["totalAmount"]})]
            if p["cancels"]:
                canceled = sum(int(c["cancelAmount"]) for c in p["cancels"])
                p["balanceAmount"] = p["totalAmount"] - canceled
                p["lastTransactionKey"] = p["cancels"][-1]["transactionKey"]
            else:
                p["balanceAmount"] = p["totalAmount"]
            approved = status in {"DONE", "CANCELED", "PARTIAL_CANCELED"} and not unpaid_cancel
            if approved and p["approvedAt"] is None:
                p["approvedAt"] = _kst_now()
                if p["lastTransactionKey"] is None:
                    p["lastTransactionKey"] = _toss_transaction_key()
            if status == "WAITING_FOR_DEPOSIT" and p["virtualAccount"] is None:
                p["method"] = "가상계좌"
                p["virtualAccount"] = self._virtual_account()
            if p["virtualAccount"] is not None:
                # Toss flips settlementStatus once the deposit arrives.
                p["virtualAccount"]["settlementStatus"] = (
                    "COMPLETED" if status in {"DONE", "PARTIAL_CANCELED"} else "INCOMPLETED"
                )
            if p["card"] is None and p["method"] == "카드" and p["approvedAt"] is not None:
                p["card"] = self._card(p)
            return copy.deepcopy(p)

    def toss_get(self, payment_key: str) -> dict[str, Any]:
        """Current state of a payment as the fake sees it (copy)."""
        with self._lock:
            return copy.deepcopy(self._toss_payments[payment_key])

    def toss_set_failure(self, payment_key: str, code: str, message: str) -> dict[str, Any]:
        """Give a payment the `failure` object Toss attaches to ABORTED/EXPIRED payments."""
        with self._lock:
            self._toss_payments[payment_key]["failure"] = {"code": code, "message": message}
            return copy.deepcopy(self._toss_payments[payment_key])

    def toss_fail_next_confirm(self, code: str, message: str, status: int = 400) -> None:
        """Queue a Toss error body for the next confirm (e.g. REJECT_CARD_PAYMENT)."""
        with self._lock:
            self._toss_confirm_failures.append(_Failure(status, 0.0, code, message))

    def toss_fail_next(self, status: int = 500, delay: float = 0.0) -> None:
        """Queue a failure for the next Toss call of any kind (calls queue up FIFO).

        With `delay`, the handler sleeps first (to trip client timeouts). A `status` below
        400 means "just slow": after the delay the request is processed normally.
        Injected failures are never stored under an Idempotency-Key, so a retry with the same
        key reaches the normal logic, like a request that never reached the provider.
        """
        with self._lock:
            self._toss_failures.append(_Failure(status, delay))

    def toss_lose_next_answer(self, status: int = 500, delay: float = 0.0) -> None:
        """The next Toss call is processed (a confirm approves the payment here) but its
        answer is lost: replaced by a `status` error, or (a `status` below 400) sent only
        after `delay`, so that a client with a shorter timeout has given up by then. The
        "confirm reached Toss, its answer never came back" case."""
        with self._lock:
            self._toss_lost_answers.append(_Failure(status, delay))

    def toss_fail_reads(self, payment_key: str, status: int, times: int | None = None) -> None:
        """Answer `status` (404: NOT_FOUND_PAYMENT; 5xx: an internal error) to the next `times`
        (None: every) `GET /v1/payments/{payment_key}`, whatever order the reads come in."""
        with self._lock:
            self._toss_read_failures[payment_key] = (status, times)

    def toss_hold_reads(self, together: int, seconds: float = 10.0) -> None:
        """Hold each `GET /v1/payments/{paymentKey}` until `together` of them are in flight at
        once (or `toss_release_reads`); from then on none is held. A read held `seconds` in
        vain goes on, and counts in `toss_read_counts`: so a test fails, never hangs."""
        with self._lock:
            self._toss_read_hold = (together, seconds)

    def toss_release_reads(self) -> None:
        with self._lock:
            self._toss_read_hold = None
            self._toss_reads_moved.notify_all()

    def toss_read_counts(self) -> tuple[int, int, int]:
        """Payment reads (in flight now, most in flight at once, held in vain)."""
        with self._lock:
            most, missed = self._toss_most_reads_in_flight, self._toss_reads_held_in_vain
            return self._toss_reads_in_flight, most, missed

    def toss_virtual_account_next_confirm(self, secret: str) -> None:
        """Make the next confirm issue a virtual account (WAITING_FOR_DEPOSIT) with `secret`."""
        with self._lock:
            self._toss_va_secrets.append(secret)

    def toss_next_cancel_status(self, status: str) -> None:
        """Give the next cancel request's cancel this `cancelStatus` (overseas easy-pay
        cancels are IN_PROGRESS until the foreign wallet confirms them)."""
        with self._lock:
            self._toss_cancel_statuses.append(status)

    def toss_webhook_body(
        self, payment_key: str, event_type: str = "PAYMENT_STATUS_CHANGED"
    ) -> bytes:
        with self._lock:
            data = copy.deepcopy(self._toss_payments[payment_key])
        return _json_bytes({"eventType": event_type, "createdAt": _toss_event_time(), "data": data})

    def toss_deposit_callback_body(
        self, payment_key: str, secret: str, status: str = "DONE"
    ) -> bytes:
        """Flat DEPOSIT_CALLBACK body. Does not change the payment: call toss_set_status too."""
        with self._lock:
            p = self._toss_payments[payment_key]
            transaction_key = p["lastTransactionKey"] or _toss_transaction_key()
            order_id = p["orderId"]
        return _json_bytes(
            {
                "createdAt": _toss_event_time(),
                "secret": secret,
                "status": status,
                "transactionKey": transaction_key,
                "orderId": order_id,
            }
        )

    def toss_settlement(
        self, payment_key: str, order_id: str, amount: int, sold_date: str, fee: int = 0
    ) -> None:
        """Add a line to Toss's settlement report that no Payment object of the fake backs
        (a payment the ledger never heard of)."""
        with self._lock:
            self._toss_extra_settlements.append(
                self._toss_settlement_line(
                    payment_key, _toss_transaction_key(), order_id, amount, sold_date, fee
                )
            )

    def leave_off_settlements(self, provider_payment_id: str) -> None:
        """Toss's paymentKey or Stripe's PaymentIntent: its reports no longer list it."""
        with self._lock:
            self._unsettled.add(provider_payment_id)

    # ------------------------------------------------------------------ Stripe setup

    def stripe_session(
        self,
        session_id: str,
        order_id: str,
        amount_total: int,
        currency: str = "usd",
        payment_status: str = "paid",
        status: str = "complete",
        payment_intent: str | None = None,
        use_client_reference_id: bool = False,
    ) -> dict[str, Any]:
        """Register a Checkout Session; `payment_intent` defaults to a fresh ``pi_...`` id."""
        now = int(time.time())
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "cancel_url": "https://example.test/cancel",
            "client_reference_id": order_id if use_client_reference_id else None,
            "created": now,
            "currency": currency,
            "customer": None,
            "expires_at": now + 86400,
            "livemode": False,
            "metadata": {} if use_client_reference_id else {"order_id": order_id},
            "mode": "payment",
            "payment_intent": payment_intent or _stripe_id("pi"),
            "payment_status": payment_status,
            "status": status,
            "success_url": "https://example.test/success",
            "url": None,
        }
        with self._lock:
            self._stripe_sessions[session_id] = session
            return copy.deepcopy(session)

    def stripe_refunds(self) -> list[dict[str, Any]]:
        """Refunds the fake has created so far (copies)."""
        with self._lock:
            return copy.deepcopy(self._stripe_refunds)

    def stripe_refund(
        self, payment_intent: str, amount: int, status: str = "succeeded", reason: str = ""
    ) -> dict[str, Any]:
        """A refund made outside our API (the Dashboard, another request), as Stripe holds it."""
        with self._lock:
            session = self._stripe_session_of(payment_intent)
            assert session is not None, f"no Checkout Session has {payment_intent}"
            metadata = {"reason": reason} if reason else {}
            return copy.deepcopy(self._new_stripe_refund(session, amount, None, metadata, status))

    def stripe_set_refund_status(self, refund_id: str, status: str) -> None:
        """Move a refund on, e.g. ``pending`` -> ``succeeded`` or ``failed``."""
        with self._lock:
            refund = next(r for r in self._stripe_refunds if r["id"] == refund_id)
            refund["status"] = status

    def stripe_next_refund_status(self, status: str) -> None:
        """The next refund created through the API gets `status` (e.g. ``pending``)."""
        with self._lock:
            self._stripe_refund_statuses.append(status)

    def stripe_charge(self, payment_intent: str) -> dict[str, Any]:
        """The charge of a session's PaymentIntent, as `GET /v1/charges/{id}` answers it."""
        with self._lock:
            session = self._stripe_session_of(payment_intent)
            assert session is not None, f"no Checkout Session has {payment_intent}"
            return self._stripe_charge_of(session)

    def stripe_dispute(
        self, payment_intent: str, amount: int | None = None, reason: str = "fraudulent"
    ) -> dict[str, Any]:
        """The customer's bank disputes the charge (default: all of it); status needs_response."""
        with self._lock:
            session = self._stripe_session_of(payment_intent)
            assert session is not None, f"no Checkout Session has {payment_intent}"
            dispute: dict[str, Any] = {
                "id": _stripe_id("dp"),
                "object": "dispute",
                "amount": int(session["amount_total"]) if amount is None else amount,
                "balance_transactions": [],
                "charge": "ch_" + payment_intent.removeprefix("pi_"),
                "created": int(time.time()),
                "currency": session["currency"],
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": payment_intent,
                "reason": reason,
                "status": "needs_response",
            }
            self._stripe_disputes.append(dispute)
            return copy.deepcopy(dispute)

    def stripe_close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """End a dispute: ``won``, ``lost`` or ``warning_closed``."""
        with self._lock:
            dispute = next(d for d in self._stripe_disputes if d["id"] == dispute_id)
            dispute["status"] = status
            return copy.deepcopy(dispute)

    def stripe_disputes(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._stripe_disputes)

    def stripe_hold_refund_lists(self, until: int | None) -> None:
        """Hold each refunds list request (up to 5 s) until the fake holds `until` refunds, so
        two refund requests interleave: both create before either lists."""
        with self._lock:
            self._stripe_list_hold = until

    def stripe_fail_next(self, status: int = 500, delay: float = 0.0) -> None:
        """Same semantics as toss_fail_next, for the next Stripe call."""
        with self._lock:
            self._stripe_failures.append(_Failure(status, delay))

    def stripe_event(
        self,
        event_type: str,
        obj: dict[str, Any],
        event_id: str | None = None,
        created: int | None = None,
    ) -> bytes:
        return json.dumps(
            {
                "id": event_id or _stripe_id("evt"),
                "object": "event",
                "api_version": stripe.api_version,
                "created": int(time.time()) if created is None else created,
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        ).encode("utf-8")

    def stripe_signature(
        self, payload: bytes, timestamp: int | None = None, secret: str | None = None
    ) -> str:
        """``Stripe-Signature`` header computed independently of the SDK (so tests check it)."""
        t = int(time.time()) if timestamp is None else timestamp
        key = (secret if secret is not None else self.stripe_webhook_secret).encode("utf-8")
        signed = f"{t}.".encode() + payload
        return f"t={t},v1={hmac.new(key, signed, hashlib.sha256).hexdigest()}"

    # ------------------------------------------------------------------ request handling

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> _Response | None:
        path = urlsplit(raw_path).path
        if method != "GET" or not path.startswith("/v1/payments/") or path.count("/") != 3:
            return self._answer(method, raw_path, headers, body)
        self._toss_read_begins()  # GET /v1/payments/{paymentKey}
        try:
            return self._answer(method, raw_path, headers, body)
        finally:
            with self._lock:  # before the answer is sent: the client's next read comes after
                self._toss_reads_in_flight -= 1

    def _toss_read_begins(self) -> None:
        with self._lock:
            self._toss_reads_in_flight += 1
            in_flight = self._toss_reads_in_flight
            self._toss_most_reads_in_flight = max(self._toss_most_reads_in_flight, in_flight)
            self._toss_reads_moved.notify_all()
            if self._toss_read_hold is None:
                return
            together, seconds = self._toss_read_hold
            if not self._toss_reads_moved.wait_for(
                lambda: self._toss_read_hold is None or self._toss_reads_in_flight >= together,
                timeout=seconds,
            ):
                self._toss_reads_held_in_vain += 1
            self._toss_read_hold = None  # together once (or given up): the rest go on
            self._toss_reads_moved.notify_all()

    def _answer(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> _Response | None:
        url = urlsplit(raw_path)
        path = url.path
        provider: Provider | None
        if path in _TOSS_ROOTS or path.startswith("/v1/payments/"):
            provider = "toss"
        elif path.startswith("/v1/"):
            provider = "stripe"
        else:
            provider = None

        parsed_json: Any | None = None
        form: dict[str, Any] | None = None
        content_type = headers.get("content-type", "")
        if body and "json" in content_type:
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        elif "x-www-form-urlencoded" in content_type:
            form = _decode_stripe_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        if method == "GET" and url.query:  # Stripe list filters arrive in the query string
            form = _decode_stripe_form(parse_qsl(url.query, keep_blank_values=True))

        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=dict(parse_qsl(url.query, keep_blank_values=True)),
                    headers=headers,
                    body=body,
                    json=parsed_json,
                    form=form,
                    provider=provider,
                )
            )
            failures = (
                self._toss_failures
                if provider == "toss"
                else self._stripe_failures
                if provider == "stripe"
                else []
            )
            failure = failures.pop(0) if failures else None
            lost = (
                self._toss_lost_answers.pop(0)
                if provider == "toss" and failure is None and self._toss_lost_answers
                else None
            )

        if failure is not None:
            if failure.delay > 0 and self._stopping.wait(failure.delay):
                return None
            if failure.status >= 400:
                if provider == "toss":
                    return _Response(
                        failure.status,
                        {
                            "code": "FAILED_INTERNAL_SYSTEM_PROCESSING",
                            "message": _TOSS_MSG_INTERNAL,
                        },
                    )
                return _Response(
                    failure.status,
                    {
                        "error": {
                            "type": "api_error",
                            "message": "An unknown error occurred (injected by FakeProviders).",
                        }
                    },
                    {"Request-Id": _stripe_id("req")},
                )

        if lost is not None:
            with self._lock:
                processed = self._toss_route(method, path, headers, parsed_json)
            return self._lost(processed, lost)
        with self._lock:
            if provider == "toss" and path == "/v1/settlements":
                return self._toss_settlements(headers, dict(parse_qsl(url.query)))
            if provider == "toss":
                return self._toss_route(method, path, headers, parsed_json)
            if provider == "stripe":
                return self._stripe_route(method, path, headers, body, form or {})
            return _Response(404, {"message": f"FakeProviders: no route for {method} {path}"})

    def _lost(self, processed: _Response, lost: _Failure) -> _Response | None:
        if lost.delay > 0 and self._stopping.wait(lost.delay):
            return None
        if lost.status < 400:
            return processed  # late: the client has timed out by now
        body = {"code": "FAILED_INTERNAL_SYSTEM_PROCESSING", "message": _TOSS_MSG_INTERNAL}
        return _Response(lost.status, body)

    # ---- Toss

    @staticmethod
    def _toss_error(status: int, code: str, message: str) -> _Response:
        return _Response(status, {"code": code, "message": message})

    def _toss_route(
        self, method: str, path: str, headers: dict[str, str], body: Any | None
    ) -> _Response:
        expected = "Basic " + base64.b64encode(f"{self.toss_secret_key}:".encode()).decode()
        if headers.get("authorization") != expected:
            return self._toss_error(401, "UNAUTHORIZED_KEY", _TOSS_MSG_UNAUTHORIZED)

        parts = [unquote(p) for p in path.split("/")[3:]]  # after /v1/payments/
        data: dict[str, Any] = body if isinstance(body, dict) else {}
        if method == "POST" and parts == ["confirm"]:
            return self._toss_confirm(data)
        if method == "GET" and len(parts) == 2 and parts[0] == "orders":
            return self._toss_payment_of_order(parts[1])
        if method == "GET" and len(parts) == 1 and parts[0]:
            failed = self._toss_read_failure(parts[0])
            if failed is not None:
                return failed
            payment = self._toss_payments.get(parts[0])
            if payment is None:
                return self._toss_error(404, "NOT_FOUND_PAYMENT", _TOSS_MSG_NOT_FOUND)
            return _Response(200, copy.deepcopy(payment))
        if method == "POST" and len(parts) == 2 and parts[1] == "cancel":
            key = headers.get("idempotency-key")
            if key and key in self._toss_idempotency:
                return self._toss_idempotency[key]
            response = self._toss_cancel(parts[0], data)
            if key:
                self._toss_idempotency[key] = response
            return response
        return self._toss_error(404, "NOT_FOUND", f"FakeProviders: no Toss route {method} {path}")

    def _toss_read_failure(self, payment_key: str) -> _Response | None:
        status, times = self._toss_read_failures.get(payment_key, (0, 0))
        if times == 0:
            return None
        self._toss_read_failures[payment_key] = (status, None if times is None else times - 1)
        if status == 404:
            return self._toss_error(404, "NOT_FOUND_PAYMENT", _TOSS_MSG_NOT_FOUND)
        return self._toss_error(status, "FAILED_INTERNAL_SYSTEM_PROCESSING", _TOSS_MSG_INTERNAL)

    def _toss_payment_of_order(self, order_id: str) -> _Response:
        """`GET /v1/payments/orders/{orderId}`: the order's payment (the latest, should a
        test register two); 404 while no confirm or checkout has reached Toss."""
        found = [p for p in self._toss_payments.values() if p["orderId"] == order_id]
        if not found:
            return self._toss_error(404, "NOT_FOUND_PAYMENT", _TOSS_MSG_NOT_FOUND)
        return _Response(200, copy.deepcopy(found[-1]))

    def _toss_confirm(self, body: dict[str, Any]) -> _Response:
        payment_key = body.get("paymentKey")
        order_id = body.get("orderId")
        amount = body.get("amount")
        if (
            not isinstance(payment_key, str)
            or not isinstance(order_id, str)
            or (not isinstance(amount, int) or isinstance(amount, bool))
        ):
            return self._toss_error(400, "INVALID_REQUEST", _TOSS_MSG_INVALID)
        if self._toss_confirm_failures:
            f = self._toss_confirm_failures.pop(0)
            return self._toss_error(f.status, f.code or "INVALID_REQUEST", f.message or "")

        p = self._toss_payments.get(payment_key)
        if p is None:
            # Payment keys come from the browser checkout we do not simulate: accept any.
            p = self._new_toss_payment(payment_key, order_id, amount, "카드", "KRW")
            self._toss_payments[payment_key] = p
        if p["status"] in _TOSS_ALREADY_PROCESSED:
            return self._toss_error(400, "ALREADY_PROCESSED_PAYMENT", _TOSS_MSG_ALREADY_PROCESSED)
        if p["status"] not in _TOSS_CONFIRMABLE:  # ABORTED / EXPIRED
            return self._toss_error(
                404,
                "NOT_FOUND_PAYMENT_SESSION",
                "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
            )
        if p["orderId"] != order_id or p["totalAmount"] != amount:
            return self._toss_error(400, "INVALID_REQUEST", _TOSS_MSG_INVALID)

        p["lastTransactionKey"] = _toss_transaction_key()
        if self._toss_va_secrets:
            p["secret"] = self._toss_va_secrets.pop(0)
            p["method"] = "가상계좌"
            p["card"] = None
            p["virtualAccount"] = self._virtual_account()
            p["status"] = "WAITING_FOR_DEPOSIT"
        else:
            p["status"] = "DONE"
            p["approvedAt"] = _kst_now()
            if p["method"] == "카드":
                p["card"] = self._card(p)
        return _Response(200, copy.deepcopy(p))

    def _toss_cancel(self, payment_key: str, body: dict[str, Any]) -> _Response:
        p = self._toss_payments.get(payment_key)
        if p is None:
            return self._toss_error(404, "NOT_FOUND_PAYMENT", _TOSS_MSG_NOT_FOUND)
        reason = body.get("cancelReason")
        if not isinstance(reason, str) or not reason:
            return self._toss_error(400, "INVALID_REQUEST", _TOSS_MSG_INVALID)
        if p["status"] == "CANCELED":
            return self._toss_error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.")
        if p["status"] not in _TOSS_CANCELABLE:
            return self._toss_error(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.")
        amount = body.get("cancelAmount", p["balanceAmount"])
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return self._toss_error(400, "INVALID_REQUEST", _TOSS_MSG_INVALID)
        if amount > p["balanceAmount"]:
            return self._toss_error(400, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다.")
        cancel = self._fill_cancel({"cancelAmount": amount, "cancelReason": reason})
        if self._toss_cancel_statuses:
            cancel["cancelStatus"] = self._toss_cancel_statuses.pop(0)
        p["balanceAmount"] -= amount
        cancel["refundableAmount"] = p["balanceAmount"]
        p["cancels"] = [*(p["cancels"] or []), cancel]
        p["lastTransactionKey"] = cancel["transactionKey"]
        p["status"] = "CANCELED" if p["balanceAmount"] == 0 else "PARTIAL_CANCELED"
        return _Response(200, copy.deepcopy(p))

    @staticmethod
    def _new_toss_payment(
        payment_key: str, order_id: str, amount: int, method: str, currency: str
    ) -> dict[str, Any]:
        vat = round(amount / 11)
        return {
            "mId": "tvivarepublica",
            "version": "2022-11-16",
            "lastTransactionKey": None,
            "paymentKey": payment_key,
            "orderId": order_id,
            "orderName": f"order {order_id}",
            "type": "NORMAL",
            "status": "READY",
            "requestedAt": _kst_now(),
            "approvedAt": None,
            "useEscrow": False,
            "cultureExpense": False,
            "card": None,
            "virtualAccount": None,
            "transfer": None,
            "mobilePhone": None,
            "giftCertificate": None,
            "cashReceipt": None,
            "cashReceipts": None,
            "discount": None,
            "cancels": None,
            "secret": None,
            "easyPay": None,
            "country": "KR",
            "failure": None,
            "isPartialCancelable": True,
            "receipt": {"url": f"https://dashboard.tosspayments.com/receipt/{payment_key}"},
            "checkout": {"url": f"https://api.tosspayments.com/v1/payments/{payment_key}/checkout"},
            "currency": currency,
            "totalAmount": amount,
            "balanceAmount": amount,
            "suppliedAmount": amount - vat,
            "vat": vat,
            "taxFreeAmount": 0,
            "taxExemptionAmount": 0,
            "method": method,
            "metadata": None,
        }

    @staticmethod
    def _fill_cancel(cancel: dict[str, Any]) -> dict[str, Any]:
        return {
            "transactionKey": _toss_transaction_key(),
            "cancelReason": "고객 요청",
            "canceledAt": _kst_now(),
            "taxFreeAmount": 0,
            "taxExemptionAmount": 0,
            "refundableAmount": 0,
            "easyPayDiscountAmount": 0,
            "cancelStatus": "DONE",
            "cancelRequestId": None,
            "receiptKey": None,
            **cancel,
        }

    @staticmethod
    def _virtual_account() -> dict[str, Any]:
        return {
            "accountType": "일반",
            "accountNumber": "X" + "".join(str(secrets.randbelow(10)) for _ in range(13)),
            "bankCode": "20",
            "customerName": "김토스",
            "dueDate": (datetime.now(KST) + timedelta(days=7)).isoformat(timespec="seconds"),
            "refundStatus": "NONE",
            "expired": False,
            "settlementStatus": "INCOMPLETED",
            "refundReceiveAccount": None,
        }

    @staticmethod
    def _card(payment: dict[str, Any]) -> dict[str, Any]:
        return {
            "amount": payment["totalAmount"],
            "issuerCode": "71",
            "acquirerCode": "71",
            "number": "43301234****123*",
            "installmentPlanMonths": 0,
            "approveNo": "00000000",
            "useCardPoint": False,
            "cardType": "신용",
            "ownerType": "개인",
            "acquireStatus": "READY",
            "isInterestFree": False,
            "interestPayer": None,
        }

    # ---- Stripe

    def _toss_settlements(self, headers: dict[str, str], query: dict[str, str]) -> _Response:
        """`GET /v1/settlements?startDate&endDate&page&size`: a JSON array of Settlement
        objects sold on those days (soldDate, the default dateType), paged from 1."""
        expected = "Basic " + base64.b64encode(f"{self.toss_secret_key}:".encode()).decode()
        if headers.get("authorization") != expected:
            return self._toss_error(401, "UNAUTHORIZED_KEY", _TOSS_MSG_UNAUTHORIZED)
        start, end = query.get("startDate"), query.get("endDate")
        if not start or not end:
            return self._toss_error(400, "INVALID_REQUEST", _TOSS_MSG_INVALID)
        lines = [*self._toss_report_lines(), *self._toss_extra_settlements]
        lines = [line for line in lines if start <= line["soldDate"] <= end]
        page, size = int(query.get("page") or 1), int(query.get("size") or 100)
        return _Response(200, copy.deepcopy(lines[(page - 1) * size : page * size]))

    def _toss_report_lines(self) -> list[dict[str, Any]]:
        lines = []
        for p in self._toss_payments.values():
            if not p["approvedAt"] or p["paymentKey"] in self._unsettled:
                continue
            key, order, amount = p["paymentKey"], p["orderId"], p["totalAmount"]
            approval = hashlib.sha1(key.encode()).hexdigest()[:32].upper()  # stable per payment
            fee = amount * _TOSS_FEE_BPS // 10000
            lines.append(
                self._toss_settlement_line(key, approval, order, amount, p["approvedAt"][:10], fee)
            )
            for cancel in p["cancels"] or []:
                if cancel.get("cancelStatus", "DONE") == "DONE":
                    lines.append(
                        self._toss_settlement_line(
                            key, cancel["transactionKey"], order, -int(cancel["cancelAmount"]),
                            str(cancel["canceledAt"])[:10], 0,
                        )
                    )  # fmt: skip
        return lines

    @staticmethod
    def _toss_settlement_line(
        payment_key: str, transaction_key: str, order_id: str, amount: int, sold: str, fee: int
    ) -> dict[str, Any]:
        vat = fee // 10
        paid_out = (datetime.fromisoformat(sold) + timedelta(days=2)).date().isoformat()
        return {
            "mId": "tvivarepublica",
            "paymentKey": payment_key,
            "transactionKey": transaction_key,
            "orderId": order_id,
            "currency": "KRW",
            "method": "카드",
            "amount": amount,
            "interestFee": 0,
            "fees": [{"type": "BASE", "fee": fee}],
            "supplyAmount": fee,
            "vat": vat,
            "payOutAmount": amount - fee - vat,
            "approvedAt": f"{sold}T00:00:00+09:00",
            "soldDate": sold,
            "paidOutDate": paid_out,
        }

    @staticmethod
    def _stripe_error(
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        type_: str = "invalid_request_error",
    ) -> _Response:
        error: dict[str, Any] = {"type": type_, "message": message}
        if code is not None:
            error["code"] = code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            error["param"] = param
        return _Response(status, {"error": error})

    def _stripe_route(
        self, method: str, path: str, headers: dict[str, str], body: bytes, form: dict[str, Any]
    ) -> _Response:
        response = self._stripe_route_inner(method, path, headers, body, form)
        response.headers.setdefault("Request-Id", _stripe_id("req"))
        return response

    def _stripe_route_inner(
        self, method: str, path: str, headers: dict[str, str], body: bytes, form: dict[str, Any]
    ) -> _Response:
        if headers.get("authorization") != f"Bearer {self.stripe_api_key}":
            return self._stripe_error(
                401, "Invalid API Key provided: " + headers.get("authorization", "")[7:15] + "***"
            )
        parts = [unquote(p) for p in path.split("/")[2:]]  # after /v1/
        if method == "GET" and len(parts) == 3 and parts[:2] == ["checkout", "sessions"]:
            session = self._stripe_sessions.get(parts[2])
            if session is None:
                return self._stripe_error(
                    404, f"No such checkout.session: '{parts[2]}'", "resource_missing", "session"
                )
            return _Response(200, copy.deepcopy(session))
        if method == "GET" and parts == ["checkout", "sessions"]:
            return self._stripe_list_sessions(form)
        if method == "GET" and len(parts) == 2 and parts[0] == "charges":
            found = [
                s
                for s in self._stripe_sessions.values()
                if "ch_" + str(s["payment_intent"]).removeprefix("pi_") == parts[1]
            ]
            if not found:
                return self._stripe_error(
                    404, f"No such charge: '{parts[1]}'", "resource_missing", "id"
                )
            return _Response(200, self._stripe_charge_of(found[-1]))
        if method == "GET" and parts == ["refunds"]:
            return self._stripe_list_refunds(form)
        if method == "GET" and parts == ["balance_transactions"]:
            return self._stripe_balance_transactions(form)
        if method == "POST" and parts == ["refunds"]:
            key = headers.get("idempotency-key")
            if key and key in self._stripe_idempotency:
                first_body, cached = self._stripe_idempotency[key]
                if first_body != body:
                    return self._stripe_error(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        type_="idempotency_error",
                    )
                return _Response(
                    cached.status, cached.body, {**cached.headers, "Idempotent-Replayed": "true"}
                )
            response = self._stripe_create_refund(form)
            if key:
                self._stripe_idempotency[key] = (body, response)
            return response
        return self._stripe_error(
            404, f"Unrecognized request URL ({method}: {path}).", "resource_missing"
        )

    def _stripe_create_refund(self, form: dict[str, Any]) -> _Response:
        pi = form.get("payment_intent")
        if not isinstance(pi, str) or not pi:
            return self._stripe_error(
                400,
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                "parameter_missing",
                "payment_intent",
            )
        session = self._stripe_session_of(pi)
        if session is None:
            return self._stripe_error(
                404, f"No such payment_intent: '{pi}'", "resource_missing", "payment_intent"
            )
        remaining = self._stripe_refundable(session)
        charge = "ch_" + pi.removeprefix("pi_")
        if remaining <= 0:
            return self._stripe_error(
                400, f"Charge {charge} has already been refunded.", "charge_already_refunded"
            )
        raw_amount = form.get("amount")
        if raw_amount is None:
            amount = remaining
        elif isinstance(raw_amount, str) and raw_amount.isdigit() and int(raw_amount) > 0:
            amount = int(raw_amount)
        else:
            return self._stripe_error(
                400, "Invalid positive integer", "parameter_invalid_integer", "amount"
            )
        if amount > remaining:
            return self._stripe_error(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                "amount_too_large",
                "amount",
            )
        reason = form.get("reason")
        if reason is not None and reason not in _STRIPE_REFUND_REASONS:
            return self._stripe_error(
                400,
                f"Invalid reason: must be one of {', '.join(sorted(_STRIPE_REFUND_REASONS))}",
                "parameter_invalid_string",
                "reason",
            )
        metadata = form.get("metadata")
        status = self._stripe_refund_statuses.pop(0) if self._stripe_refund_statuses else None
        refund = self._new_stripe_refund(
            session, amount, reason, metadata if isinstance(metadata, dict) else {}, status
        )
        return _Response(200, copy.deepcopy(refund))

    def _stripe_list_refunds(self, form: dict[str, Any]) -> _Response:
        """The list endpoint, newest first, filtered by payment_intent or charge like Stripe."""
        if self._stripe_list_hold is not None:
            until = self._stripe_list_hold
            self._refund_created.wait_for(lambda: len(self._stripe_refunds) >= until, timeout=5)
        pi, charge = form.get("payment_intent"), form.get("charge")
        items = [
            r
            for r in self._stripe_refunds
            if (not pi or r["payment_intent"] == pi) and (not charge or r["charge"] == charge)
        ]
        body = {"object": "list", "data": items[::-1], "has_more": False, "url": "/v1/refunds"}
        return _Response(200, copy.deepcopy(body))

    def _stripe_list_sessions(self, form: dict[str, Any]) -> _Response:
        """`GET /v1/checkout/sessions`: newest first, `created[gte|gt|lte|lt]` filters,
        `limit` (default 10, at most 100) and `starting_after` paging, `has_more`."""
        created = form.get("created")
        bounds = created if isinstance(created, dict) else {}
        ops = {"gte": int.__ge__, "gt": int.__gt__, "lte": int.__le__, "lt": int.__lt__}
        # Newest first; sessions of one second in reverse order of creation, as Stripe.
        items = [
            s
            for s in reversed(list(self._stripe_sessions.values()))
            if all(ops[op](int(s["created"]), int(v)) for op, v in bounds.items() if op in ops)
        ]
        items.sort(key=lambda s: -int(s["created"]))
        after = form.get("starting_after")
        if isinstance(after, str) and after:
            ids = [s["id"] for s in items]
            if after not in ids:
                return self._stripe_error(
                    400, f"No such checkout.session: '{after}'", "resource_missing"
                )
            items = items[ids.index(after) + 1 :]
        limit = max(1, min(int(form.get("limit") or 10), 100))
        body = {
            "object": "list",
            "data": items[:limit],
            "has_more": len(items) > limit,
            "url": "/v1/checkout/sessions",
        }
        return _Response(200, copy.deepcopy(body))

    def _stripe_balance_transactions(self, form: dict[str, Any]) -> _Response:
        """`GET /v1/balance_transactions`: a paid session's charge and each succeeded
        refund, newest first, `created[gte|lt]`, `starting_after` paging, and `expand`
        of `data.source` (and `data.source.charge`) as Stripe expands them."""
        created = form.get("created")
        bounds = created if isinstance(created, dict) else {}
        ops = {"gte": int.__ge__, "gt": int.__gt__, "lte": int.__le__, "lt": int.__lt__}
        items = [
            t
            for t in self._stripe_ledger_lines()
            if all(ops[op](int(t["created"]), int(v)) for op, v in bounds.items() if op in ops)
        ]
        items.sort(key=lambda t: -int(t["created"]))
        after = form.get("starting_after")
        if isinstance(after, str) and after:
            ids = [t["id"] for t in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = max(1, min(int(form.get("limit") or 10), 100))
        expand = form.get("expand")
        expanded = set(expand.values() if isinstance(expand, dict) else [])
        page = [self._stripe_expand(t, expanded) for t in items[:limit]]
        body = {
            "object": "list",
            "data": page,
            "has_more": len(items) > limit,
            "url": "/v1/balance_transactions",
        }
        return _Response(200, copy.deepcopy(body))

    def _stripe_ledger_lines(self) -> list[dict[str, Any]]:
        lines = []
        for s in self._stripe_sessions.values():
            pi = str(s["payment_intent"])
            if s["payment_status"] != "paid" or pi in self._unsettled:
                continue
            amount = int(s["amount_total"])
            fee = amount * _STRIPE_FEE_BPS // 10000 + _STRIPE_FEE_FIXED
            txn_id = "txn_" + pi.removeprefix("pi_")
            charge = "ch_" + pi.removeprefix("pi_")
            lines.append(
                self._stripe_txn(txn_id, "charge", charge, amount, fee, s["currency"], s["created"])
            )
        for r in self._stripe_refunds:
            if r["status"] == "succeeded" and r["payment_intent"] not in self._unsettled:
                amount, txn_id = -int(r["amount"]), r["balance_transaction"]
                lines.append(
                    self._stripe_txn(
                        txn_id, "refund", r["id"], amount, 0, r["currency"], r["created"]
                    )
                )
        return lines

    @staticmethod
    def _stripe_txn(
        txn_id: str, type_: str, source: str, amount: int, fee: int, currency: str, created: int
    ) -> dict[str, Any]:
        detail = {"amount": fee, "currency": currency, "type": "stripe_fee"}
        details = [{**detail, "description": "Stripe processing fees"}] if fee else []
        return {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": amount,
            "available_on": int(created) + 2 * 86400,
            "created": int(created),
            "currency": currency,
            "description": None,
            "fee": fee,
            "fee_details": details,
            "net": amount - fee,
            "reporting_category": type_,
            "source": source,
            "status": "available",
            "type": type_,
        }

    def _stripe_expand(self, txn: dict[str, Any], expanded: set[str]) -> dict[str, Any]:
        if "data.source" not in expanded:
            return txn
        source_id = str(txn["source"])
        if source_id.startswith("re_"):
            refund = next(r for r in self._stripe_refunds if r["id"] == source_id)
            source: dict[str, Any] = copy.deepcopy(refund)
            session = self._stripe_session_of(refund["payment_intent"])
            if "data.source.charge" in expanded and session is not None:
                source["charge"] = self._stripe_charge_of(session)
        else:
            pi = "pi_" + source_id.removeprefix("ch_")
            session = self._stripe_session_of(pi)
            source = self._stripe_charge_of(session) if session else {"id": source_id}
        return {**txn, "source": source}

    def _stripe_charge_of(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session's charge: our order id in its metadata (as the Checkout Session's
        `payment_intent_data.metadata` puts it), refunds and disputes as the fake holds them."""
        pi = str(session["payment_intent"])
        charge_id = "ch_" + pi.removeprefix("pi_")
        amount = int(session["amount_total"])
        refunded = amount - self._stripe_refundable(session)
        order_id = session["metadata"].get("order_id") or session["client_reference_id"]
        paid = session["payment_status"] == "paid"
        return {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if paid else 0,
            "amount_refunded": refunded,
            "captured": paid,
            "created": session["created"],
            "currency": session["currency"],
            "disputed": any(d["charge"] == charge_id for d in self._stripe_disputes),
            "livemode": False,
            "metadata": {"order_id": order_id} if order_id else {},
            "paid": paid,
            "payment_intent": pi,
            "payment_method_details": {"type": "card"},
            "refunded": refunded >= amount,
            "status": "succeeded" if paid else "pending",
        }

    def _stripe_session_of(self, payment_intent: str) -> dict[str, Any] | None:
        sessions = self._stripe_sessions.values()
        return next((s for s in sessions if s["payment_intent"] == payment_intent), None)

    def _stripe_refundable(self, session: dict[str, Any]) -> int:
        # A failed or canceled refund gives the money back to the charge's balance.
        pi = session["payment_intent"]
        refunds = [r for r in self._stripe_refunds if r["payment_intent"] == pi]
        refunded = sum(
            int(r["amount"]) for r in refunds if r["status"] not in ("failed", "canceled")
        )
        return int(session["amount_total"]) - refunded

    def _new_stripe_refund(
        self,
        session: dict[str, Any],
        amount: int,
        reason: str | None,
        metadata: dict[str, Any],
        status: str | None,
    ) -> dict[str, Any]:
        pi = session["payment_intent"]
        refund: dict[str, Any] = {
            "id": _stripe_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": _stripe_id("txn"),
            "charge": "ch_" + pi.removeprefix("pi_"),
            "created": int(time.time()),
            "currency": session["currency"],
            "destination_details": None,
            "metadata": metadata,
            "payment_intent": pi,
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status or "succeeded",
            "transfer_reversal": None,
        }
        self._stripe_refunds.append(refund)
        self._refund_created.notify_all()
        return refund
