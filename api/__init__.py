"""The outside of the service: HTTP routes, provider adapters, CLI."""
