"""Helpers for the tests only (the product's local-stack toolkit is :mod:`berth.stack`)."""
