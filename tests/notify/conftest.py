"""The channels' test servers (tests/notify_servers) as fixtures for these tests."""

from tests.notify_servers import push_server, smtp_server, twilio_server

__all__ = ["push_server", "smtp_server", "twilio_server"]
