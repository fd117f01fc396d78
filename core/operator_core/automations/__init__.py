"""Automations (seed 004): ticket-triggered definitions of action, condition and delay nodes.

The modules here are pure: no database, clock or subject. ``definition`` parses a file,
``validate`` checks it against a registry, ``walker`` advances an execution given explicit
events and times; storage, the runner and the CLI build on them. Nothing is imported here so
that importing one module does not load the others.
"""
