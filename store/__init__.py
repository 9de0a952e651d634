"""What is kept: configuration, the database, graph documents and state transitions.

``store`` imports neither ``daemon`` nor ``console``.
"""
