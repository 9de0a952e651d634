"""Screens of the console: the overview, graph and task detail, events, and the dialogs."""
