"""Baseline objectives, one module each. Every module here registers itself with
``mhpo.objectives.register`` when ``mhpo.objectives.available()`` first runs; no list to edit."""
