"""Walltime awareness inside the single-user server (a jupyter-server extension).

A batch job ends at its time limit, and the notebook server with it. This
extension, loaded in every server the QueueSpawner starts, tells the user
before that happens:

* ``GET {base_url}api/batchhub/walltime``: job id, end time, seconds left and
  the warning thresholds (``BATCHHUB_WALLTIME_WARNINGS``, seconds). The
  JupyterLab plugin in ``spawner/labextension`` polls it and shows a warning
  notification at each threshold, with an "Extend" action.
* ``POST {base_url}api/batchhub/walltime/extend`` ``{"minutes": 30}``: asks the
  hub (``/hub/api/batchhub/extend``, with the server's own token) for more time;
  the hub checks the partition's limit and answers with a sentence either way.
* The server log gets a warning at each threshold too.

The end time comes from the controller (the job's ``end_time``, so an extension
is seen at once) and falls back to start + time limit when the node cannot
reach the controller.
"""

import asyncio
import json
import os
import time

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

CACHE_SECONDS = 15


class WalltimeInfo:
    """The job's end time, asked of the controller at most every CACHE_SECONDS."""

    def __init__(self, env=os.environ):
        self.job_id = env.get("SLURM_JOB_ID", "")
        self.socket = env.get("BATCHHUB_SOCKET", "")
        self.started = float(env.get("BATCHHUB_SERVER_STARTED") or time.time())
        limit = env.get("BATCHHUB_TIME_LIMIT", "")
        self.fallback_end = self.started + int(limit) * 60 if limit.isdigit() else None
        self.warnings = sorted((int(w) for w in env.get("BATCHHUB_WALLTIME_WARNINGS", "600,120").split(",")
                                if w.strip().isdigit()), reverse=True)
        self._end, self._asked = None, 0.0

    def _ask_controller(self):
        from batch_backend.client import Client, ClientError
        try:
            with Client(self.socket or None, timeout=5) as c:
                job = c.job(self.job_id)
            return job.get("end_time")
        except ClientError:
            return None

    async def end_time(self):
        if self.job_id and time.time() - self._asked > CACHE_SECONDS:
            self._asked = time.time()
            end = await asyncio.get_running_loop().run_in_executor(None, self._ask_controller)
            if end:
                self._end = end
        return self._end or self.fallback_end

    async def as_dict(self):
        end = await self.end_time()
        left = None if end is None else max(0, int(end - time.time()))
        return {"job_id": self.job_id, "end_time": end, "seconds_left": left, "warnings": self.warnings}


class WalltimeHandler(APIHandler):
    @web.authenticated
    async def get(self):
        self.finish(json.dumps(await self.settings["batchhub_walltime"].as_dict()))


class ExtendHandler(APIHandler):
    @web.authenticated
    async def post(self):
        try:
            minutes = int((self.get_json_body() or {}).get("minutes", 30))
        except (TypeError, ValueError):
            raise web.HTTPError(400, "integer 'minutes' required") from None
        api_url = os.environ.get("JUPYTERHUB_API_URL", "")
        if not api_url:
            raise web.HTTPError(404, "not running under JupyterHub")
        req = HTTPRequest(url_path_join(api_url, "batchhub/extend"), method="POST",
                          headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}",
                                   "Content-Type": "application/json"},
                          body=json.dumps({"server_name": os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
                                           "minutes": minutes}))
        try:
            resp = await AsyncHTTPClient().fetch(req)
            body, status = resp.body, resp.code
        except HTTPClientError as e:
            body, status = (e.response.body if e.response else b"{}"), e.code
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {"extended": False, "message": f"the hub answered HTTP {status}"}
        self.settings["batchhub_walltime"]._asked = 0.0  # see the new end time at once
        self.set_status(200 if status < 500 else 502)
        self.finish(json.dumps(answer))


async def _warn_in_log(serverapp, info):
    """Log each threshold once: the server log is where admins look."""
    warned = set()
    while True:
        try:
            d = await info.as_dict()
            left = d["seconds_left"]
            for w in info.warnings:
                if left is not None and left <= w and w not in warned:
                    warned.add(w)
                    serverapp.log.warning("batch job %s reaches its time limit in %d s: the server "
                                          "will be stopped then", info.job_id, left)
        except Exception:  # a warning must never take the server down
            serverapp.log.debug("walltime check failed", exc_info=True)
        await asyncio.sleep(30)


def _jupyter_server_extension_points():
    return [{"module": "spawner.walltime"}]


def _load_jupyter_server_extension(serverapp):
    info = WalltimeInfo()
    web_app = serverapp.web_app
    web_app.settings["batchhub_walltime"] = info
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [
        (url_path_join(base, "api/batchhub/walltime"), WalltimeHandler),
        (url_path_join(base, "api/batchhub/walltime/extend"), ExtendHandler),
    ])
    if info.job_id:
        IOLoop.current().add_callback(_warn_in_log, serverapp, info)
    serverapp.log.info("batchhub walltime extension loaded (job %s)", info.job_id or "?")
