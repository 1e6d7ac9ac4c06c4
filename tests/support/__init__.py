"""Helpers shared by the test suites: generated images, service checks, settings."""
