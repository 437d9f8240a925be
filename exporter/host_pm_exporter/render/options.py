"""Rendering options that come from flags (filters on what is shown, never on what is read)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    flags_include: re.Pattern[str] | None = None
    flags_exclude: re.Pattern[str] | None = None

    def show_flag(self, flag: str) -> bool:
        if self.flags_include is not None and not self.flags_include.fullmatch(flag):
            return False
        return self.flags_exclude is None or not self.flags_exclude.fullmatch(flag)
