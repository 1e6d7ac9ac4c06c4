"""The imgworker daemon and command line: settings, records, broker, metrics, HTTP, CLI."""

__version__ = "0.1.0"
