"""Synthetic API access-log traffic with a ground truth of exactly what was sent.

``lae.generate`` is the command line around it; ``model`` draws the events, ``clock`` places
them in event time, ``truth`` records them.
"""
