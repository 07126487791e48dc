"""`python -m projections`: the projection runners alone (no web code). `ledger project` is
what deployments run: the runners, the webhook inbox's processor and reconciliation."""

import logging

from ledger.settings import Settings
from projections.runtime import ReadModels

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
ReadModels(Settings()).run_forever()
