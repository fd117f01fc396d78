"""Dashboard widgets that are not panes: header, activity, event tail, pane tabs, filter,
footer."""
