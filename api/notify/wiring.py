"""The outbox's parts, built once per process (api/app.py): the queue, its worker, the
channels the settings configure, the texts."""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from api.notify.channels import CHANNELS
from api.notify.dispatcher import OutboxWorker
from api.notify.registry import configured_channels
from api.notify.texts import Texts
from ledger.settings import Settings
from projections.runtime import ReadModels
from store.contacts import ContactBook
from store.outbox import Outbox


def build_outbox(
    settings: Settings,
    datastore: SQLiteDatastore | PostgresDatastore,
    contacts: ContactBook,
    read_models: ReadModels,
) -> tuple[Outbox, OutboxWorker]:
    outbox = Outbox(datastore)
    outbox.create_tables()

    def forget_push(endpoint: str) -> None:  # the push service said it is gone
        contacts.remove_push_subscription(endpoint)

    worker = OutboxWorker(
        outbox,
        contacts,
        configured_channels(settings, on_push_gone=forget_push),
        Texts(settings.retry_url),
        retry_seconds=settings.outbox_retry_seconds,
        max_age_seconds=settings.outbox_max_age_seconds,
        poll_seconds=settings.outbox_poll_seconds,
    )
    if "outbox" in read_models.views:  # the feeder wakes the worker once it queued
        read_models.outbox.on_queued = worker.wake
        read_models.outbox.unconfigured = frozenset(CHANNELS) - set(worker.channels)
    return outbox, worker
