"""The Toss Payments HTTP client (https://docs.tosspayments.com/reference): Basic auth with
the secret key, its errors mapped onto the ledger's."""

from __future__ import annotations

import base64
import logging
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from ledger.errors import ProviderUnavailableError

log = logging.getLogger("ledger.toss")


class TossDeclined(Exception):
    """Toss answered 4xx with its `{code, message}` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class TossClient:
    def __init__(self, base_url: str, secret_key: str | None, timeout: float) -> None:
        token = base64.b64encode(f"{secret_key or ''}:".encode()).decode()
        self._configured = bool(secret_key)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Basic {token}"},
        )

    def close(self) -> None:
        self._http.close()

    def confirm(self, payment_key: str, order_id: str, amount: int) -> dict[str, Any]:
        body = {"paymentKey": payment_key, "orderId": order_id, "amount": amount}
        # Same key for a retried confirm: Toss answers the first result instead of charging twice.
        headers = {"Idempotency-Key": f"confirm-{payment_key}"}
        return self._call("POST", "/v1/payments/confirm", json=body, headers=headers)

    def get_payment(self, payment_key: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/payments/{_segment(payment_key)}")

    def get_payment_by_order(self, order_id: str) -> dict[str, Any]:
        # Before a confirm answered, the ledger knows no paymentKey, only the order.
        return self._call("GET", f"/v1/payments/orders/{_segment(order_id)}")

    def cancel(
        self, payment_key: str, reason: str, amount: int | None, idempotency_key: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"cancelReason": reason}
        if amount is not None:
            body["cancelAmount"] = amount
        return self._call(
            "POST",
            f"/v1/payments/{_segment(payment_key)}/cancel",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )

    def settlements(self, start: date, end: date, page: int, size: int) -> list[dict[str, Any]]:
        """One page (from 1) of the settlement lines sold on those days, a JSON array
        (https://docs.tosspayments.com/reference#정산-조회)."""
        params = {
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "page": page,
            "size": size,
        }
        data = self._send("GET", "/v1/settlements", params=params)
        if not isinstance(data, list) or not all(isinstance(line, dict) for line in data):
            raise ProviderUnavailableError("Toss answered settlements that are not a list")
        return data

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = self._send(method, path, **kwargs)
        if not isinstance(data, dict):
            raise ProviderUnavailableError("Toss answered a body that is not a JSON object")
        return data

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self._configured:
            raise ProviderUnavailableError(
                "TOSS_SECRET_KEY is not configured", "provider_not_configured"
            )
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("toss %s %s unreachable: %r", method, path, exc)
            raise ProviderUnavailableError(f"Toss did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            # 5xx: retry later; 401: our credentials, not the customer's fault.
            log.warning(
                "toss %s %s answered %s: %s",
                method,
                path,
                response.status_code,
                response.text[:200],
            )
            raise ProviderUnavailableError(f"Toss answered {response.status_code}")
        try:
            data: Any = response.json()
        except ValueError as exc:
            raise ProviderUnavailableError("Toss answered a body that is not JSON") from exc
        if response.status_code >= 400:
            error = data if isinstance(data, dict) else {}
            raise TossDeclined(
                response.status_code, str(error.get("code")), str(error.get("message"))
            )
        return data


def _segment(payment_key: str) -> str:
    # A webhook body names the key: "../" or "?" in it must not steer the call elsewhere.
    return quote(payment_key, safe="", errors="surrogatepass")
