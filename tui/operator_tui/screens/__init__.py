"""Screens: the dashboard, the detail view, and the modal dialogs."""
