"""Shared pytest configuration.

The local stack fixtures (``local_stack``, ``stack``) live in ``tests/fixtures_stack.py``.
"""

pytest_plugins = ["tests.fixtures_stack"]
