"""Hub REST endpoints of the QueueSpawner (registered at import, like batchspawner's).

``POST /hub/api/batchhub/report``: the job's wrapper (:mod:`spawner.singleuser`)
reports the address its server will listen on. Authenticated with the
server's own API token, so a user can only ever set the address of one of
their own servers, and only for the job that server is waiting on.

``POST /hub/api/batchhub/extend``: a user asks for more time for a running
server (``{"server_name": "", "minutes": 30}``); the spawner decides.

``GET /hub/api/batchhub/servers``: admins see every server's job id, node,
state and time left (one watcher lookup, no controller query per server);
``GET /hub/batchhub`` is the same as a page.
"""

import html
import json
import time

from jupyterhub import handlers as page_handlers
from jupyterhub.apihandlers import APIHandler, default_handlers
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web


def _queue_spawner(user, server_name):
    spawner = user.spawners.get(server_name) if user is not None else None
    if spawner is None or not hasattr(spawner, "address_reported"):
        raise web.HTTPError(404, f"no batch server {server_name!r} for this user")
    return spawner


class ReportAddressHandler(APIHandler):
    @web.authenticated
    def post(self):
        data = self.get_json_body() or {}
        user = self.current_user
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "only a user's own server may report its address")
        spawner = _queue_spawner(user, data.get("server_name", ""))
        try:
            port = int(data["port"])
            host = str(data["host"])
        except (KeyError, TypeError, ValueError):
            raise web.HTTPError(400, "host and integer port required") from None
        if not spawner.address_reported(str(data.get("job_id", "")), host, port, data.get("node", "")):
            raise web.HTTPError(409, f"job {data.get('job_id')} is not the job of this server")
        self.set_status(201)
        self.finish(json.dumps({"message": "address recorded", "url": f"http://{host}:{port}"}))


class ExtendHandler(APIHandler):
    @web.authenticated
    async def post(self):
        data = self.get_json_body() or {}
        user = self.current_user
        name = data.get("user") or getattr(user, "name", None)
        if getattr(user, "kind", "user") != "user" or name != user.name:
            target = self.find_user(name) if name else None
            if target is None or not self.current_user or not self.check_admin(name):
                raise web.HTTPError(403, "you may only extend your own servers")
            user = target
        spawner = _queue_spawner(user, data.get("server_name", ""))
        try:
            minutes = int(data["minutes"])
        except (KeyError, TypeError, ValueError):
            raise web.HTTPError(400, "integer 'minutes' required") from None
        ok, message, new_limit = await spawner.extend_time(minutes)
        self.set_status(200 if ok else 409)
        self.finish(json.dumps({"extended": ok, "message": message, "time_limit": new_limit}))

    def check_admin(self, name):
        return "admin:servers" in self.parsed_scopes or f"admin:servers!user={name}" in self.parsed_scopes


class ServersHandler(APIHandler):
    @needs_scope("list:users")
    def get(self):
        out = _servers(self.users)
        from .watcher import JobWatcher
        watchers = [{"controller": w.address, "watched": w.watched, "queries": w.queries,
                     "reachable": w.reachable, "interval": w.interval}
                    for w in JobWatcher._instances.values()]
        self.finish(json.dumps({"servers": out, "watchers": watchers}))


def _servers(users):
    out = []
    for user in users.values():
        for name, spawner in user.spawners.items():
            if hasattr(spawner, "describe_job") and spawner.job_id:
                out.append(dict(spawner.describe_job(), user=user.name, server_name=name))
    return sorted(out, key=lambda s: (s["user"], s["server_name"]))


class ServersPage(BaseHandler):
    """An admin's table of every server's job: id, node, state, time left."""

    @web.authenticated
    def get(self):
        if not self.has_scope("list:users"):
            raise web.HTTPError(403, "admins only")
        e = html.escape
        rows = []
        for s in _servers(self.users):
            left = s.get("time_left")
            left_text = "" if left is None else f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
            rows.append(f"<tr><td>{e(s['user'])}</td><td>{e(s['server_name'] or '(default)')}</td>"
                        f"<td>{e(str(s['job_id']))}</td><td>{e(s.get('state') or '?')}</td>"
                        f"<td>{e(s.get('partition') or '')}</td><td>{e(s.get('node') or '')}</td>"
                        f"<td>{e(left_text)}</td></tr>")
        body = "".join(rows) or '<tr><td colspan="7">no batch servers</td></tr>'
        self.finish(
            "<!doctype html><html><head><title>Batch servers</title><style>"
            "body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left;"
            "border-bottom:1px solid #ddd}</style></head><body><h1>Servers as batch jobs</h1>"
            f"<p>{time.strftime('%Y-%m-%d %H:%M:%S')} &middot; <a href=\"{self.hub.base_url}admin\">hub admin</a>"
            "</p><table><tr><th>user</th><th>server</th><th>job</th><th>state</th><th>partition</th>"
            f"<th>node</th><th>time left</th></tr>{body}</table></body></html>")


_HANDLERS = [
    (r"/api/batchhub/report", ReportAddressHandler),
    (r"/api/batchhub/extend", ExtendHandler),
    (r"/api/batchhub/servers", ServersHandler),
]
for _h in _HANDLERS:
    if _h not in default_handlers:
        default_handlers.append(_h)
if (r"/batchhub", ServersPage) not in page_handlers.default_handlers:
    page_handlers.default_handlers.append((r"/batchhub", ServersPage))
