"""Mutation testing: a curated list of one-line bugs the test suite must catch (tests/mutation/README.md)."""
