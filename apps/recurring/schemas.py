"""Request and response models of the recurring service's API."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rrule: str = Field(min_length=1, max_length=500, description="RFC 5545 RRULE value")
    dtstart: AwareDatetime = Field(description="first occurrence candidate, with an offset")
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone to step in")
    count: int = Field(default=10, ge=1, le=100, description="how many occurrences")


class PreviewResponse(BaseModel):
    timezone: str
    occurrences: list[datetime] = Field(description="in the given zone's offset at each time")
