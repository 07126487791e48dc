"""The admin pages: static HTML shells whose JavaScript reads the admin JSON API with the
token the person signs in with. The server renders no payment data, no secret and no SQL:
a page is the same for everyone, and the API decides who may read what."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.errors import ApiError
from ledger.money import SYMBOLS, THREE_DECIMAL_CURRENCIES, ZERO_DECIMAL_CURRENCIES

PAGES_DIR = Path(__file__).parent
templates = Jinja2Templates(directory=PAGES_DIR / "templates")

# Only the files shipped beside this module are served; nothing from a request reaches the disk.
STATIC_FILES = {p.name: p for p in (PAGES_DIR / "static").iterdir() if p.is_file()}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".md": "text/markdown"}

# The token sits in sessionStorage, so no script but ours may ever run on these pages.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

# The pages format integer minor units with the ledger's own exponents (default 2).
CURRENCY_EXPONENTS = {
    **dict.fromkeys(sorted(ZERO_DECIMAL_CURRENCIES), 0),
    **dict.fromkeys(sorted(THREE_DECIMAL_CURRENCIES), 3),
}

router = APIRouter(tags=["admin pages"])


def _page(request: Request, name: str, **context: str) -> HTMLResponse:
    """The page's shell, with what formatting needs: the currencies' exponents and symbols
    (amounts as `Money.for_people` writes them) and the business time zone."""
    formats = {
        "exponents": CURRENCY_EXPONENTS,
        "symbols": SYMBOLS,
        "timezone": request.app.state.services.settings.timezone,
    }
    return templates.TemplateResponse(
        request, f"{name}.html", {"page": name, "formats": formats, **context},
        headers=SECURITY_HEADERS,
    )  # fmt: skip


@router.get("/admin", include_in_schema=False)
def admin_home() -> RedirectResponse:
    return RedirectResponse("/admin/dashboard")


@router.get("/admin/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request) -> HTMLResponse:
    """Revenue (total, this month, today) per currency, and payment counts."""
    return _page(request, "dashboard")


@router.get("/admin/payments", response_class=HTMLResponse)
def payments_page(request: Request) -> HTMLResponse:
    """The payments table, filterable by status, provider and trainer, newest first."""
    return _page(request, "payments")


@router.get("/admin/settlements", response_class=HTMLResponse)
def settlements_page(request: Request) -> HTMLResponse:
    """Trainers' statements by period and status, one statement's lines, closing a period
    and recording a payout (each confirmed before it is sent)."""
    return _page(request, "settlements")


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request) -> HTMLResponse:
    """The webhook inbox: what providers delivered, how each delivery ended, its raw body,
    and replaying one."""
    return _page(request, "webhooks")


@router.get("/admin/bookings/{booking_id}", response_class=HTMLResponse)
def booking_page(request: Request, booking_id: str) -> HTMLResponse:
    """A booking's payments and the notifications its trainer was sent (read or not)."""
    return _page(request, "booking", booking_id=booking_id)


@router.get("/admin/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        raise ApiError(404, "not_found", f"no static file {name}")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
