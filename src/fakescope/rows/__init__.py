"""Row preparation shared by ``train`` and ``evaluate``: which images a job reads, and which it leaves
out and why (docs/architecture.md, "fakescope.rows").

One concept per module:

- :mod:`~fakescope.rows.rowset`: :class:`~fakescope.rows.rowset.RowSet`, the rows by split and every
  row left out with its reason;
- :mod:`~fakescope.rows.datasets`: a ``--data`` spec (a name, a folder, a manifest) as rows;
- :mod:`~fakescope.rows.splits`: the train/val split a run trains on, the part of a dataset an
  evaluation scores, and the two-class checks both need;
- :mod:`~fakescope.rows.unreadable`: every image decoded once up front, the bad ones left out;
- :mod:`~fakescope.rows.seen`: the content-hash leakage guard (a run's own train/val images, under any
  path, are never scored);
- :mod:`~fakescope.rows.landmarks` and :mod:`~fakescope.rows.synthetic`: synthetic fakes made from a
  split's real faces, with their blend masks' landmarks;
- :mod:`~fakescope.rows.crop_caches`: crops decoded once into memory-mapped caches;
- :mod:`~fakescope.rows.training`: the steps above in ``train``'s order.

Nothing here writes into a run folder before the caller has accepted the rows: the files that record
the choice (``skipped_rows.csv``, ``seen_rows.csv``, ``synthetic_landmarks.csv``) are written by the
``write_*`` functions, which ``train`` calls once the run is accepted.
"""
