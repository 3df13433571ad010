"""ForwardingRules: who may receive whose publications (caucus places, screening).

The SFU applies them per Subscription without renegotiating: a Slot that the rules do
not allow keeps its transceiver but is fed nothing (server/media/sfu.py). The rules are
made from the stored room by server/separation.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Screening modes that withhold something: "video" (must not see), "all" (nor hear).
SCREEN_MODES = ("video", "all")


@dataclass(frozen=True)
class ForwardingRules:
    """`places`: participant id -> caucus id (absent: the main room); `screens`:
    (receiver, publisher) -> "video" | "all"; `recorders` receive the main room and the
    `recorded` caucuses."""

    places: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    screens: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))
    #: The room's recorder (in the main room) and the caucuses it may receive (every
    #: member consented: server/caucus_recording.py).
    recorders: frozenset[str] = frozenset()
    recorded: frozenset[str] = frozenset()

    def allows(self, receiver: str, publisher: str, kind: str) -> bool:
        """May `receiver` get `publisher`'s publication of `kind` ("audio" | "video")?"""
        place = self.places.get(publisher)
        if receiver in self.recorders:
            return place is None or place in self.recorded
        if self.places.get(receiver) != place:
            return False  # caucus members receive only each other; the main room, itself
        mode = self.screens.get((receiver, publisher))
        return not (mode == "all" or (mode == "video" and kind == "video"))


OPEN = ForwardingRules()
