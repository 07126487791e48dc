"""`python -m projections`: the read side alone, as `ledger project` runs it (no web code)."""

import logging

from ledger.settings import Settings
from projections.runtime import ReadModels

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
ReadModels(Settings()).run_forever()
