"""Operator engine: actions, persistence, executor, runner, subjects, CLI."""
