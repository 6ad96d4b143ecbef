"""The application layer: the CLI, the jobs (``identities``, ``logz``, ``train`` outputs, ``compare``),
their reports and figures, and the one registry of proposal names. It imports the generic core of
``inference`` (estimators, objectives, diagnostics, the handler, the posterior, proposals, the training
algorithms and their assembly, the driver); the core never imports it."""
