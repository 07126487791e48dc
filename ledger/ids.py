"""Deterministic aggregate ids: uuid5 over a natural key, for any text a key may hold."""

from __future__ import annotations

import hashlib
from uuid import NAMESPACE_URL, UUID, uuid5

PAYMENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledger.invalid/payments")


def stable_id(name: str) -> UUID:
    """`uuid5(PAYMENT_NAMESPACE, name)`, also for a name holding an unpaired surrogate.

    `uuid.uuid5` encodes strictly and raised on such a name (a provider's id or order
    reference can carry one); with `surrogatepass` every other name hashes to the same id
    as before, so ids already stored keep matching.
    """
    digest = hashlib.sha1(PAYMENT_NAMESPACE.bytes + name.encode("utf-8", "surrogatepass"))
    return UUID(bytes=digest.digest()[:16], version=5)
