"""Estimation stage: intent-to-treat, complier, subgroup and sensitivity estimates."""
