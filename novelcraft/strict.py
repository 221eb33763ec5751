"""Base classes of every typed record and recipe section: unknown keys are errors, never dropped."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Recipe sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Record(BaseModel):
    """Persisted records (Book JSON, stage files, training records): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
