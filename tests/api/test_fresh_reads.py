"""Reads that wait for a position (`?min_position=`) under load, over a real uvicorn server:
waiting holds no worker thread, and one token's waits are bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.auth import issue_trainer_token
from api.deps import Services
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, payment_body
from tests.live import uvicorn_serving

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}
FAR_AHEAD = 10**9  # a position no test reaches
PROMPT_SECONDS = 1.0  # generous, and far below the 5 s a read may wait
DEADLINE_SECONDS = 20.0


class InFlight:
    """Counts the HTTP requests inside the app: the test's view of who is waiting."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.count = app, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


@dataclass
class Server:
    url: str
    services: Services
    in_flight: InFlight


@contextmanager
def serve(settings: Settings, *, run_projections: bool = True) -> Iterator[Server]:
    """The whole app behind a real uvicorn (its event loop, its threadpool) on a free port."""
    app = create_app(settings, run_projections=run_projections)
    counted = InFlight(app)
    with uvicorn_serving(counted) as url:
        yield Server(url, app.state.services, counted)


async def until(condition: Callable[[], bool], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.01)


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request
    return response, time.perf_counter() - started


def client(server: Server) -> httpx.AsyncClient:
    # One connection per concurrent request, as from many clients.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(base_url=server.url, timeout=DEADLINE_SECONDS, limits=limits)


def order_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["order_id"] for item in response.json()["items"]]


def test_forty_waiting_reads_leave_health_and_checkout_prompt(settings: Settings) -> None:
    trainers = [
        {"Authorization": f"Bearer {issue_trainer_token(settings, f't-{i}')}"} for i in range(40)
    ]

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            waits = [
                asyncio.create_task(
                    http.get(
                        f"/api/trainers/t-{i}/notifications?min_position={FAR_AHEAD}", headers=h
                    )
                )
                for i, h in enumerate(trainers)
            ]
            await until(lambda: server.in_flight.count >= 40, "40 reads waiting", 4.0)
            health, health_seconds = await timed(http.get("/healthz"))
            created, checkout_seconds = await timed(
                http.post("/api/payments", json=payment_body(order_id="o-fresh"))
            )
            position = created.json()["position"]
            fresh, fresh_seconds = await timed(
                http.get(f"/api/admin/payments?min_position={position}", headers=ADMIN)
            )
            seconds = (health_seconds, checkout_seconds, fresh_seconds)
            assert max(seconds) < PROMPT_SECONDS, seconds
            assert (health.status_code, created.status_code) == (200, 201)
            assert order_ids(fresh) == ["o-fresh"], "a satisfied wait reads its own write"
            assert not any(wait.done() for wait in waits), "the 40 still wait"
            for answer in await asyncio.gather(*waits):
                assert_error(answer, 503, "projection_lagging")

    with serve(settings) as server:
        asyncio.run(scenario(server))


def test_one_tokens_extra_waits_are_refused_while_another_token_waits(settings: Settings) -> None:
    """Projections stopped: the write is not yet readable, so its readers wait; the token's
    ninth to twelfth waits get 429 at once; once the projections run, the others read it."""

    async def scenario(server: Server) -> None:
        async with client(server) as http:
            created = await http.post("/api/payments", json=payment_body(order_id="o-wait"))
            url = f"/api/admin/payments?min_position={created.json()['position']}"
            admin = [asyncio.create_task(http.get(url, headers=ADMIN)) for _ in range(12)]
            auditor = asyncio.create_task(http.get(url, headers=AUDITOR))
            await until(lambda: sum(w.done() for w in admin) >= 4, "four refused", 4.0)
            await until(lambda: server.in_flight.count == 9, "eight plus one waiting", 4.0)
            refused = [wait.result() for wait in admin if wait.done()]
            assert len(refused) == 4 and not auditor.done()
            for answer in refused:
                assert_error(answer, 429, "too_many_waits")
                assert answer.headers["Retry-After"].isdigit()
            server.services.read_models.start()
            waited = await asyncio.gather(auditor, *(w for w in admin if not w.done()))
            assert [order_ids(answer) for answer in waited] == [["o-wait"]] * 9

    with serve(settings, run_projections=False) as server:
        asyncio.run(scenario(server))
