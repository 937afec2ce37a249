"""Plumbing both serving containers share on top of KServe (needs the ``serve`` extra)."""
