"""Background jobs: the registry of per-shop jobs, the runner, the embedded scheduler, Celery and
the clock. Entry points for the composition roots:

- ``jobs.registry.JobContext(db, settings, dispatcher_factory, hooks=..., clock=...)``
- ``jobs.scheduler.start_embedded_scheduler(ctx, intervals=None) -> SchedulerHandle`` (serve)
- ``jobs.celery_app.worker_main(factory, argv=None, settings=None)`` (worker)
- ``jobs.clock.main(settings, db, intervals=None)`` (clock)
- ``jobs.runner.run_job_for_all_shops(ctx, job_name, now)`` (run a job once, by hand)

See docs/operations.md.
"""
