"""Configuration: the typed settings, where their values come from, and addresses."""
