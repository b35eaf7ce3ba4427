"""The operators' console: server-rendered pages (Jinja2 + htmx) on the site's API port.

:func:`install` adds it to the API app of :func:`agent.api.make_app`: the sign-in page,
the console session as one more credential source (:mod:`agent.web.session`), the pages
and their fragments (:mod:`agent.web.routes`) and the vendored static files (htmx,
uPlot) under ``/static``. No build step, nothing fetched at run time.
"""

from agent.web.routes import install

__all__ = ["install"]
