"""Helpers the tests share: the harness state, image builders, a search index."""
