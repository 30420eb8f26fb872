"""arXiv identifiers in every form people paste, normalised to ``(id, version)``."""

from __future__ import annotations

import re
from dataclasses import dataclass

NEW_ID = r"\d{4}\.\d{4,5}"  # 1706.03762
OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"  # hep-th/9901001
_ID = re.compile(rf"^(?P<id>{NEW_ID}|{OLD_ID})(?:v(?P<v>\d+))?$", re.IGNORECASE)
_URL = re.compile(
    r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|e-print|src)/(?P<rest>.+?)"
    r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)


class BadArxivId(ValueError):
    """Text that is not an arXiv identifier."""


@dataclass(frozen=True)
class ArxivId:
    id: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.id}v{self.version}" if self.version else self.id


def parse_arxiv_id(text: str) -> ArxivId:
    """Parse ``1706.03762``, ``1706.03762v7``, ``arXiv:1706.03762``, abs/pdf URLs, or
    old-style ``hep-th/9901001``."""
    s = text.strip()
    m = _URL.match(s)
    if m:
        s = m.group("rest")
    if s.lower().startswith("arxiv:"):
        s = s[6:]
    m = _ID.match(s)
    if not m:
        raise BadArxivId(
            f"'{text}' is not an arXiv id (expected e.g. 1706.03762, arXiv:1706.03762v7, "
            "hep-th/9901001 or an arxiv.org/abs/... URL)"
        )
    archive_id = m.group("id")
    if "/" in archive_id:  # old style: archive lower case, number as is
        archive, num = archive_id.split("/")
        archive_id = f"{archive.lower()}/{num}"
    return ArxivId(archive_id, int(m.group("v")) if m.group("v") else None)
