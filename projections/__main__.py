"""`python -m projections`: the same as `ledger project`."""

from api.cli import project

project()
