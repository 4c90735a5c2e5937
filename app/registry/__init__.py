"""Registries: the v2 client, its bounded transport, auth challenges and tokens, stored
credentials, and the outbound policy."""
