"""What things are: the states, models and read views every other layer shares.

This package sits below ``db/`` and ``actions/`` so that both can import it without
importing each other.
"""
