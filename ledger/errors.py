"""Error bases the API maps to HTTP statuses in one place."""


class LedgerError(Exception):
    """A command was refused because its input breaks a rule (HTTP 400/422)."""

    code = "invalid_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFoundError(LedgerError):
    """The named payment, order or notification does not exist (HTTP 404)."""

    code = "not_found"


class ConflictError(LedgerError):
    """The request contradicts what the ledger already holds (HTTP 409)."""

    code = "conflict"


class AmountMismatchError(LedgerError):
    """A provider or client reported an amount other than the initiated one (HTTP 400)."""

    code = "amount_mismatch"


class ProviderError(LedgerError):
    """The provider declined the operation; the decline is recorded (HTTP 402)."""

    code = "provider_declined"


class ProviderRefusedError(LedgerError):
    """The provider refused a request we made (e.g. a refund beyond what it holds); nothing
    changed, and the refusal carries the provider's own code (HTTP 400, `details.provider`)."""

    def __init__(self, message: str, code: str, provider: str) -> None:
        super().__init__(message, code)
        self.provider = provider


class ProviderUnavailableError(LedgerError):
    """The provider could not be reached or answered 5xx; retrying may help (HTTP 502)."""

    code = "provider_unavailable"
