/*
 * batchhub-walltime: a JupyterLab 4 plugin, hand-written as a module-federation container
 * (no build step). JupyterLab loads this file, calls init(shareScope) and get("./extension");
 * the plugin takes Notification and ServerConnection from the application's shared modules.
 *
 * It polls {base_url}api/batchhub/walltime (spawner/walltime.py) and shows a warning at each
 * threshold (default 10 and 2 minutes before the job's time limit), with an "Extend" action
 * that asks the hub for more time within the partition's limits.
 */
var _JUPYTERLAB = (window._JUPYTERLAB = window._JUPYTERLAB || {});
(function () {
  "use strict";
  var NAME = "batchhub-walltime";
  var shareScope = null;

  function shared(pkg) {
    var versions = shareScope && shareScope[pkg];
    if (!versions) {
      return Promise.reject(new Error(NAME + ": shared module " + pkg + " not found"));
    }
    var keys = Object.keys(versions);
    var pick = keys.filter(function (k) { return versions[k].loaded; })[0] || keys[keys.length - 1];
    return Promise.resolve(versions[pick].get()).then(function (factory) { return factory(); });
  }

  function clock(epoch) {
    var d = new Date(epoch * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function minutes(seconds) {
    return seconds < 90 ? seconds + " s" : Math.round(seconds / 60) + " min";
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "Warns before the batch job running this server reaches its time limit.",
    autoStart: true,
    activate: function (app) {
      Promise.all([shared("@jupyterlab/apputils"), shared("@jupyterlab/services")]).then(function (mods) {
        var Notification = mods[0].Notification;
        var ServerConnection = mods[1].ServerConnection;
        var settings = app.serviceManager.serverSettings;
        var url = settings.baseUrl.replace(/\/?$/, "/") + "api/batchhub/walltime";
        var warned = {};

        function request(path, init) {
          return ServerConnection.makeRequest(url + path, init || {}, settings).then(function (r) {
            return r.json();
          });
        }

        function extend(id) {
          request("/extend", { method: "POST", body: JSON.stringify({ minutes: 30 }) }).then(function (a) {
            Notification.dismiss(id);
            Notification.emit(a.message || "No answer from the hub.", a.extended ? "success" : "error",
                              { autoClose: a.extended ? 8000 : false });
            if (a.extended) { warned = {}; }
          });
        }

        function check() {
          request("", {}).then(function (info) {
            var left = info.seconds_left;
            var delay = 30000;
            if (left !== null && left !== undefined) {
              var crossed = (info.warnings || []).filter(function (w) { return left <= w && !warned[w]; });
              if (crossed.length) {
                crossed.forEach(function (w) { warned[w] = true; });
                var id = Notification.warning(
                  "This server runs as batch job " + info.job_id + " and will be stopped at " +
                  clock(info.end_time) + " (in " + minutes(left) + ") when its time limit is reached. " +
                  "Save your work.",
                  { autoClose: false,
                    actions: [{ label: "Extend by 30 min", callback: function () { extend(id); } }] });
              }
              if (left < 900) { delay = 10000; }
            }
            window.setTimeout(check, delay);
          }, function () { window.setTimeout(check, 60000); });
        }
        // after the layout is restored: notifications emitted earlier stay in the center, unseen
        app.restored.then(check);
      }, function (err) { console.error(err); });
    }
  };

  _JUPYTERLAB[NAME] = {
    init: function (scope) { shareScope = scope; },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(NAME + ": no module " + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: plugin }; });
    }
  };
})();
