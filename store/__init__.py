"""Event-store infrastructure: the `eventsourcing` recorders this service selects by topic.

Kept out of `ledger/` (which imports no database code) and out of `projections/` (the
write side uses them too). `ledger.settings` names them as topic strings only.
"""
