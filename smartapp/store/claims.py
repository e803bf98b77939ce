"""What the store's claims answer: a replay marker's state, a link attempt, a key fetch from the shared budget."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReplayState(enum.Enum):
    CLAIMED = "claimed"          # this caller holds the in-progress lease: process the request
    IN_PROGRESS = "in_progress"  # another caller holds it: its worker may still be storing the effects
    DONE = "done"                # processed and stored: an identical request changes nothing


@dataclass(frozen=True)
class LinkAttempt:
    """The pending link when this code may be exchanged on it, else the reason it may not."""

    link: dict | None
    refusal: str | None = None  # "oauth_link_not_pending", "oauth_code_reused", "oauth_link_attempts_exhausted"


@dataclass(frozen=True)
class SharedKey:
    """What the deployment knows about a keyId: the text another worker stored, else whether this one may fetch."""

    value: str | None
    may_fetch: bool = False
