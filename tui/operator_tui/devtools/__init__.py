"""Tools for developing the dashboard, never imported by it: the fixture database with a
frozen clock (``fixture``) and the screenshots made from it (``screenshots``), which the
snapshot tests share."""
