"""The application layer: the CLI, the jobs (``identities``, ``logz``, ``train`` outputs, ``compare``),
their reports and figures, and the one registry of proposal names. The main job is in parts:
``compare`` runs it, ``verdict`` grades each posterior, ``report`` writes report.md and summary.json,
``plots`` draws the figures (matplotlib Figure objects: no backend is chosen for the user). It imports the generic core of
``inference`` (estimators, objectives, diagnostics, the handler, the posterior, proposals, the training
algorithms and their assembly, the driver); the core never imports it."""
