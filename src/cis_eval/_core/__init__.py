"""The estimation core shared by every stage (private).

Design columns, the least-squares engine, randomization, permutations and multiplicity
corrections.
"""
