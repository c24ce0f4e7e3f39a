"""Audits: the records of what Garrison saw and did."""
