"""What runs: the broker protocol, the scheduler, the worker, control and supervision.

``daemon`` imports ``store``, never ``console``, ``textual`` or ``click``.
"""
