"""Fidelity stage: implementation measures from service logs, targets and the affiliate report."""
