"""The estimation core shared by every stage (private).

Design columns, the least-squares engine, randomization, permutations and multiplicity
corrections; the impact specification (:mod:`.spec`) and the impact core that turns a
students table and a specification into tidy rows (:mod:`.impact`), shared by the
estimation and integrity stages; receipt of services (:mod:`.receipt`).
"""
