"""Turning numbers into pictures and documents: plots, tables, the study report (en/es)."""
