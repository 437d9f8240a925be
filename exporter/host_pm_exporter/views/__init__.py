"""Renderers: turn a `HostSnapshot` into metrics (and later XML, HTML).  They never
touch the filesystem."""
