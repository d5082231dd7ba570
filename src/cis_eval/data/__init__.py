"""Data stage: simulate a trial, validate tables against the data contract, describe them."""
