"""Shared pieces every layer uses: errors, message contracts, paths, secrets, policies."""
