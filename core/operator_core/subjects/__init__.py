"""Subjects: the systems Operator acts on."""

from operator_core.actions.subject import BaseSubject, ExecutionContext, Subject
from operator_core.subjects.loader import load_subject

__all__ = ["BaseSubject", "ExecutionContext", "Subject", "load_subject"]
