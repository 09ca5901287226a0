"""Canvas building, the job registry and progress aggregation in Redis."""

from vpsweb.orchestrator.api import JobNotFound, Orchestrator
from vpsweb.orchestrator.store import JobRecord, JobStatus

__all__ = ["JobNotFound", "JobRecord", "JobStatus", "Orchestrator"]
