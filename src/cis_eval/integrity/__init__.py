"""Trial-integrity stage: baseline equivalence, attrition, clustering and the WWC review."""
