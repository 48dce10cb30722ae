"""The kernel every other package stands on: settings, message contracts, plate text, and
the few helpers (Redis clients, CLI errors, free ports) more than one package needs.

It imports nothing of ours (tests/test_layering.py checks), so anything may import it.
"""
