"""The ``amazoniax`` command: submit, status, doctor, channels, dev."""
