"""Widgets of the console: each receives data through reactive attributes and reports through
messages; none reads the store or the broker."""
