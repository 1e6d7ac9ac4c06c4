"""Stores: where imported images end up. One module per store type, one registry line each."""
