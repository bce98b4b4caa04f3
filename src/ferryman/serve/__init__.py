"""``ferryman serve``: jobs on schedules and on arriving files, in one long-running process.

A thin adapter over the job runner (docs/serve.md): :mod:`.scheduler` holds the core object
(jobs, next run times, enable/disable, run now), :mod:`.runs` starts each run as a child
process through :func:`ferryman.jobs.run.run_job`, :mod:`.triggers` watches directories,
:mod:`.cron` reads cron expressions. Importing this package imports nothing of them.
"""

__all__: list[str] = []
