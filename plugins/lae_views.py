"""Airflow plugin: the LAE dashboard inside the Airflow UI.

The query API app of ``lae serve`` (lae.serving.api) is mounted into Airflow's api-server at
``/lae`` (``fastapi_apps``), and an external view puts "LAE views" in the UI's navigation,
showing ``/lae/dashboard/`` in the UI's frame at ``/plugin/lae-views``. The page's API and
asset URLs are relative, so they resolve under ``/lae`` here and at the root under
``lae serve``.

Like any plugin FastAPI app it is not behind Airflow's login: it serves read-only metrics
only, on the api-server's address (127.0.0.1 locally).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/lae"


def _app():
    # Cheap to build wherever plugins load (FastAPI is already imported by Airflow): the app
    # opens Cassandra on its first request, and only the api-server ever serves it.
    from lae.serving.api import create_app

    return create_app()


class LaeViewsPlugin(AirflowPlugin):
    name = "lae_views"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "LAE query API"}]
    external_views = [{
        "name": "LAE views",
        # The frame's source: the dashboard as served under the prefix above.
        "href": f"{URL_PREFIX}/dashboard/",
        "destination": "nav",
        "url_route": "lae-views",
    }]
