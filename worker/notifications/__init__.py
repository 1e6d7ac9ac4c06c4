"""Glance's notifications: their payloads, the oslo.messaging wire format, the relay."""
