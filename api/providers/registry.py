"""The providers this service was built with: built once in the composition root."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from api.errors import ApiError
from api.providers.base import PaymentProvider

AdapterT = TypeVar("AdapterT")


class ProviderRegistry:
    """Name → adapter. The registry, not a `Literal`, decides which provider names a
    request may carry, so a provider registered only in a test app is a real one there."""

    def __init__(self, providers: Iterable[PaymentProvider]) -> None:
        self._by_name: dict[str, PaymentProvider] = {}
        for provider in providers:
            if provider.name in self._by_name:
                raise ValueError(f"provider {provider.name} registered twice")
            self._by_name[provider.name] = provider

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._by_name.values())

    def get(self, name: str) -> PaymentProvider:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            message = f"unknown provider {name!r}; one of: {known}"
            raise ApiError(422, "unknown_provider", message) from None

    def find(self, name: str) -> PaymentProvider | None:
        return self._by_name.get(name)

    def adapter(self, name: str, kind: type[AdapterT]) -> AdapterT:
        """The adapter registered as `name`, as its own class (for its provider-shaped
        `confirm`); a registration of another class is a wiring error."""
        provider = self.get(name)
        if not isinstance(provider, kind):
            raise TypeError(f"provider {name} is a {type(provider).__name__}, not {kind.__name__}")
        return provider

    def close(self) -> None:
        for provider in self:
            provider.close()
