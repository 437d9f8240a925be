"""Parsing XML this package reads from files or other hosts: bounded in size, and
refused when it declares a document type (the only way to define entities, hence
entity expansion), before expat sees it."""

from __future__ import annotations

import xml.etree.ElementTree as ET


class XmlRefused(ValueError):
    """XML this package will not parse."""


def parse(data: bytes, limit: int, what: str) -> ET.Element:
    """The root element of `data`, which must be at most `limit` bytes without a DOCTYPE.

    >>> parse(b"<cpus/>", 100, "map").tag
    'cpus'
    >>> parse(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", 100, "map")
    Traceback (most recent call last):
    ...
    host_pm_exporter.cpumap.xmltext.XmlRefused: map: a document type declaration
    """
    if len(data) > limit:
        raise XmlRefused(f"{what}: larger than {limit} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmlRefused(f"{what}: a document type declaration")
    try:
        return ET.fromstring(data)  # noqa: S314 - bounded and without a DTD (checked above)
    except ET.ParseError as error:
        raise XmlRefused(f"{what}: {error}") from None
