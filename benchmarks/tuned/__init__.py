"""The tuned peer chain: what well-known parts give without Berth (see ``transformer.py``)."""
