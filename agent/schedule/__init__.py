"""The site's scheduled jobs (APScheduler inside ``run``), the daily report and its routes.

* :mod:`agent.schedule.scheduler` — the scheduler: no overlap, the misfire rule, every run
  recorded (:mod:`agent.schedule.record`);
* :mod:`agent.schedule.jobs` — the jobs from the site file's ``schedule:`` block;
* :mod:`agent.schedule.report` — the daily HTML report with its plots;
* :mod:`agent.schedule.service` — ``run``'s loop; :mod:`agent.schedule.routes` — HTTP.
"""
