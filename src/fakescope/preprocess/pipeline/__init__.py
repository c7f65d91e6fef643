"""The resumable videos/images -> aligned face crops pipeline behind ``fakescope prepare``
(docs/design.md, "Preprocessing"; INFER §3.1, AIRL §IV-B).

Output folder::

    prepare.json            the preprocess config and its hash (a re-run must use the same one)
    crops/<label>/<key>/<frame>.png   one aligned crop per sampled frame with a face
    records/<key>.json      per-video done-marker: every sampled frame, its box, score, landmarks
                            (original and aligned) and crop; written atomically *after* the crops
    manifest.csv            the crop manifest: path,label,group,dataset,method,split,video,frame
    landmarks.csv           one row per crop: box, score, 5 landmarks in the frame and in the crop
    no_face.csv             every sampled frame where no face was kept (never lost silently):
                            source,label,group,dataset,method,split,video,frame
    summary.json            counts, errors, short videos, and the no-face policy
    shards/K-of-N/          with ``shard``: that shard's summary.json and its done-marker shard.json
                            (docs/scale.md); merge_prepare then writes the four tables above

A job is one video file, one frame folder (manifest rows sharing a video and carrying ``frame``) or
one image. A job whose record exists is skipped on a re-run; any other job's crop folder is wiped
and redone, so a killed run resumes to exactly what an uninterrupted run writes. A file that cannot
be read is reported (summary ``errors``) and the job goes on; it is retried on the next run.

The run is split by what each part does: :mod:`.plan` (rows to jobs), :mod:`.job` (one job's frames,
faces, crops and record), :mod:`.executor` (the pending jobs, in this process or in worker processes),
:mod:`.outputs` (the folder's config check, tables and summary) and :mod:`.run` (the entry points).
"""

from fakescope.preprocess.pipeline.job import process_job, start_job_frames
from fakescope.preprocess.pipeline.outputs import PrepareSummary, output_config_hash
from fakescope.preprocess.pipeline.plan import PrepareJob, plan_jobs
from fakescope.preprocess.pipeline.run import merge_prepare, run_prepare

__all__ = [
    "PrepareJob", "PrepareSummary", "plan_jobs", "process_job", "run_prepare", "merge_prepare",
    "output_config_hash", "start_job_frames",
]  # fmt: skip
