"""Provider batch APIs at half price: the lane that chunks and submits (``_lane``), the
tracker that polls, fetches and settles (``_jobs``), and finding jobs again after a
restart (``_reattach``). Everything lands in the same checkpoint log and money as online
calls; see each module for why it is shaped as it is."""

from engine._batch._jobs import JobTracker, job_view
from engine._batch._lane import BatchLane, next_job_number
from engine._batch._reattach import Reattached, known_job_ids, reattach

__all__ = [
    "BatchLane",
    "JobTracker",
    "Reattached",
    "job_view",
    "known_job_ids",
    "next_job_number",
    "reattach",
]
