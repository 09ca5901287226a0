"""One view of a job for every display: its progress (from its events) and its result.

The CLI's live and plain displays, its report, and the web page (server-rendered
and, live, over Server-Sent Events) all draw from these models, so a candidate's
status (waiting, running, succeeded, late, gated, failed) and its cause are
decided once, here, and said the same way everywhere. Pure: no I/O.
"""

from vpsweb.view.job_view import CandidateRow, JobView, StageRow
from vpsweb.view.marks import candidate_label, stage_label
from vpsweb.view.result_view import ResultCandidate, ResultView

__all__ = [
    "CandidateRow",
    "JobView",
    "ResultCandidate",
    "ResultView",
    "StageRow",
    "candidate_label",
    "stage_label",
]
