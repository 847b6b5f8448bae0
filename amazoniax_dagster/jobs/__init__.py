"""The per-job engines: intake, a channel's job (files or site), heal, status."""
