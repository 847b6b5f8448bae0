"""The embedded local stack of ``amazoniax dev`` and the tests, and its demos."""
