"""The one strict, frozen pydantic base of volseg's validated data (catalogue, reports, backend specs).

Unknown fields are errors and instances are immutable once validated.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that forbids unknown fields and is frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
