"""Offline tools run by a developer, never by the running system (not shipped in the
package): graph_folding makes the shipped folded detector."""
