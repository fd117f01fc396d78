"""Operator dashboard (Textual)."""
