"""Design stage: the within-school lottery, planning and diagnosis.

``assign`` runs the lottery, ``power`` plans a trial (MDES, power, sample size) and
``diagnose`` checks a design by simulation.
"""
