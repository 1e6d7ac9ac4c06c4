"""The daemon: broker, consumer, metrics, HTTP."""
