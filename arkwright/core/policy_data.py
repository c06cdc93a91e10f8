"""Data policy: what a job's data allows, and what a site is accredited for.

The words follow the UK Government Security Classifications (OFFICIAL, with the
OFFICIAL-SENSITIVE handling caveat, SECRET, TOP SECRET) and the NHS Data Security and
Protection Toolkit (DSPT) for health data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from arkwright.core.pickling import by_constructor


class Classification(IntEnum):
    """Ordered: a site accredited for a level may hold work at that level or below."""

    OFFICIAL = 0
    OFFICIAL_SENSITIVE = 1
    SECRET = 2
    TOP_SECRET = 3

    @property
    def label(self) -> str:
        return self.name.replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Classification:
        key = text.strip().upper().replace("-", "_").replace(" ", "_")
        if not key:
            return cls.OFFICIAL
        try:
            return cls[key]
        except KeyError:
            labels = ", ".join(c.label for c in cls)
            raise ValueError(f"unknown classification {text!r} (known: {labels})") from None


class PersonalData(StrEnum):
    NONE = "none"
    PERSONAL = "personal"
    HEALTH = "health"

    @classmethod
    def parse(cls, text: str | bool | None) -> PersonalData:
        if text is None or text is False:
            return cls.NONE
        if text is True:
            return cls.PERSONAL
        key = str(text).strip().lower()
        aliases = {
            "": "none",
            "no": "none",
            "false": "none",
            "0": "none",
            "yes": "personal",
            "true": "personal",
            "1": "personal",
        }
        key = aliases.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise ValueError(
                f"unknown personal_data {text!r} (use none, personal or health)"
            ) from None


# UK GDPR lets personal data leave the UK only where adequacy regulations cover the
# destination; the EU/EEA is covered. Health data additionally needs a DSPT-assured site.
PERSONAL_DATA_JURISDICTIONS = frozenset({"UK", "EU"})
HEALTH_DATA_ACCREDITATION = "NHS-DSPT"


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """What a job's data permits. Set at submission; never loosened afterwards."""

    residency: frozenset[str] | None = None  # allowed jurisdictions; None means anywhere
    classification: Classification = Classification.OFFICIAL
    personal_data: PersonalData = PersonalData.NONE

    @classmethod
    def parse(
        cls,
        residency: str | None = None,
        classification: str | None = None,
        personal_data: str | bool | None = None,
    ) -> DataPolicy:
        allowed: frozenset[str] | None = None
        if residency and residency.strip().lower() not in ("any", "*"):
            parts = residency.replace(",", "|").split("|")
            allowed = frozenset(p.strip().upper() for p in parts if p.strip())
        return cls(
            residency=allowed,
            classification=Classification.parse(classification or ""),
            personal_data=PersonalData.parse(personal_data),
        )

    def at_least_as_strict_as(self, other: DataPolicy) -> bool:
        """True when this policy allows nothing that `other` forbids."""
        if other.residency is not None and (
            self.residency is None or not self.residency <= other.residency
        ):
            return False
        order = list(PersonalData)
        return self.classification >= other.classification and order.index(
            self.personal_data
        ) >= order.index(other.personal_data)

    # Written out, as the dataclass would generate them: generated methods stay
    # interpreted in the compiled core, and the eligibility index hashes a policy at
    # every submission (and compares it wherever equal policies are distinct objects).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataPolicy):
            return False
        return (
            self.residency == other.residency
            and self.classification == other.classification
            and self.personal_data == other.personal_data
        )

    def __hash__(self) -> int:
        return hash((self.residency, self.classification, self.personal_data))

    def __reduce__(self) -> tuple:
        return by_constructor(self)  # pickles compiled, too (core/pickling.py)
