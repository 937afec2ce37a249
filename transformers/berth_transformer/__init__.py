"""Berth transformer container: Feast online features in front of the predictor."""
