"""Views for instructors and admins: usage and fairshare over time, and advance reservations.

:class:`UsageView` samples ``sshare``'s numbers (the backend's ``shares()``)
once per interval and plots a metric per account / user over time as a small
inline SVG (no plotting library needed); :class:`ReservationList` lists the
reservations. Both refresh through :class:`kernel_ext.poller.Poller`.
ipywidgets is imported when a view is created, not on import.
"""

import html
import time

from .poller import Poller


# -- usage and fairshare -------------------------------------------------------------------------

#: What the usage view can plot: share dict key -> label.
USAGE_METRICS = {"raw_usage": "raw usage (CPU-seconds, decayed)", "effective_usage": "effective usage",
                 "fairshare": "fairshare factor"}

#: Line colours of the plot (a colour-blind-safe palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def share_key(row):
    """``account`` for an account row, ``account/user`` for a user row."""
    return f"{row['account']}/{row['user']}" if row.get("user") else str(row["account"])


def subtree(rows, account):
    """The rows of *account*'s subtree (the account, its users, its sub-accounts...) in tree order.

    *rows* are in sshare's depth-first order, so the subtree is the account's
    row and every following row deeper than it. An unknown account gives [].
    Rows without tree depths (an sshare that does not indent) give the
    account's own rows.
    """
    if not any(row.get("depth") for row in rows):
        return [row for row in rows if row["account"] == account]
    out, depth = [], None
    for row in rows:
        if depth is None:
            if row["account"] == account and not row.get("user"):
                depth = row.get("depth") or 0
                out.append(row)
        elif (row.get("depth") or 0) > depth:
            out.append(row)
        else:
            break
    return out


def _number(value, digits=6):
    if value is None:
        return ""
    if isinstance(value, (int, float)) and float(value).is_integer() and digits == 0:
        return str(int(value))
    return f"{float(value):.{digits}f}" if digits else str(int(round(float(value))))


def usage_table_html(rows):
    """The usage table as HTML: account, user, raw usage, effective usage, fairshare (sshare's numbers)."""
    esc = html.escape
    head = "".join(f"<th>{t}</th>" for t in ("account", "user", "raw shares", "raw usage", "effective usage",
                                              "fairshare"))
    body = []
    for row in rows:
        indent = "&nbsp;" * 2 * int(row.get("depth") or 0)
        body.append("<tr>" + "".join(f"<td>{v}</td>" for v in (
            indent + esc(str(row["account"])), esc(str(row.get("user") or "")), esc(str(row.get("raw_shares") or "")),
            _number(row.get("raw_usage"), 0), _number(row.get("effective_usage")),
            _number(row.get("fairshare")))) + "</tr>")
    if not body:
        body.append('<tr><td colspan="6"><i>No associations.</i></td></tr>')
    return f'<table class="batchhub-usage"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def usage_svg(series, metric, width=560, height=200):
    """A small line plot (SVG) of ``{name: [(time, value), ...]}``: no plotting library needed.

    The y axis starts at 0 and ends at the largest value (1 for the factors in
    [0, 1]); the x axis spans the sampled time. Names get a legend in colour.
    """
    esc = html.escape
    left, right, top, bottom = 48, 150, 10, 24
    points = [(t, v) for values in series.values() for t, v in values if v is not None]
    t0 = min((t for t, _ in points), default=0.0)
    t1 = max((t for t, _ in points), default=1.0)
    span = max(t1 - t0, 1e-9)
    vmax = max((v for _, v in points), default=0.0)
    if metric != "raw_usage":
        vmax = max(vmax, 1.0)
    vmax = vmax or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(t, v):
        return left + (t - t0) / span * plot_w, top + plot_h - v / vmax * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{esc(_axis_number(vmax))}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
             f'<text x="{left}" y="{height - 6}">{esc(time.strftime("%H:%M:%S", time.localtime(t0)))}</text>',
             f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">'
             f'{esc(time.strftime("%H:%M:%S", time.localtime(t1)))}</text>']
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [xy(t, v) for t, v in values if v is not None]
        if len(coords) == 1:
            x, y = coords[0]
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        elif coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        ly = top + 12 + 14 * i
        parts.append(f'<line x1="{width - right + 8}" y1="{ly - 4}" x2="{width - right + 22}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{width - right + 26}" y="{ly}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axis_number(value):
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:g}" if value >= 1 else f"{value:.2f}"


class UsageView(Poller):
    """Per-account / per-user usage and fairshare, live, with a plot over time (instructors, admins).

    Each refresh is one ``shares()`` query (sshare's numbers); the view keeps
    up to *history* samples and plots the chosen metric of the shown
    associations over time. ``account`` narrows the view to one account's
    subtree (a class: its users and sub-accounts); ``users_only`` plots user
    rows only. ``rows`` holds the share dicts currently shown, ``samples``
    the ``(time, {key: share dict})`` history, ``series()`` the plotted values.
    """

    def __init__(self, backend=None, *, account="", metric="raw_usage", interval=30.0, history=240,
                 users_only=False, start=True):
        import ipywidgets as w
        if metric not in USAGE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(USAGE_METRICS)}")
        self.history = max(2, int(history))
        self.samples = []
        self.rows = []
        self.all_rows = []
        self.title = w.HTML("<b>BatchHub usage and fairshare</b>")
        self.status = w.Label(value="(waiting for the queue)")
        self.account = w.Text(value=account, placeholder="every account", description="account")
        self.metric = w.Dropdown(options=[(label, key) for key, label in USAGE_METRICS.items()], value=metric,
                                 description="plot")
        self.users_only = w.Checkbox(value=users_only, description="users only")
        self.note = w.Label(value="")
        self.plot = w.HTML(value="")
        self.table = w.HTML(value="")
        self.widget = w.VBox([w.HBox([self.title, self.status]), w.HBox([self.account, self.metric,
                                                                         self.users_only]),
                              self.note, self.plot, self.table])
        for control in (self.account, self.metric, self.users_only):
            control.observe(lambda _c: self._render(), names="value")
        self._init_poller(backend, interval, start)

    def _query(self):
        return self.backend.shares()

    def _apply(self, rows):
        self.all_rows = list(rows)
        self.samples.append((time.time(), {share_key(r): r for r in self.all_rows}))
        del self.samples[:-self.history]
        self._render()

    def shown_rows(self):
        """The share dicts the controls select (an account's subtree, maybe users only)."""
        account = self.account.value.strip()
        rows = subtree(self.all_rows, account) if account else list(self.all_rows)
        if self.users_only.value:
            rows = [r for r in rows if r.get("user")]
        return rows

    def series(self):
        """``{key: [(time, value), ...]}`` of the plotted metric for the shown associations (root left out)."""
        metric = self.metric.value
        keys = [share_key(r) for r in self.rows if r.get("depth")]
        return {key: [(t, (sample.get(key) or {}).get(metric)) for t, sample in self.samples if key in sample]
                for key in keys}

    def _render(self):
        with self._lock:
            self.rows = self.shown_rows()
            account = self.account.value.strip()
            missing = account and self.all_rows and not self.rows
            self.note.value = f"no account {account!r} in the association tree" if missing else ""
            self.table.value = usage_table_html(self.rows)
            self.plot.value = usage_svg(self.series(), self.metric.value) if self.samples else ""


# -- reservations ----------------------------------------------------------------------------------

def _when(stamp):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else ""


class ReservationList(Poller):
    """Advance reservations: name, state, window, nodes, who may use them (one query per interval)."""

    COLUMNS = ("name", "state", "start", "end", "nodes", "users", "accounts", "flags")

    def __init__(self, backend=None, *, interval=30.0, start=True):
        import ipywidgets as w
        self.reservations = {}
        self.title = w.HTML("<b>BatchHub reservations</b>")
        self.status = w.Label(value="(waiting for the queue)")
        self.table = w.HTML(value="")
        self.widget = w.VBox([w.HBox([self.title, self.status]), self.table])
        self._init_poller(backend, interval, start)

    def _query(self):
        return self.backend.reservations()

    @staticmethod
    def row(resv):
        return [resv.get("name", ""), resv.get("state", ""), _when(resv.get("start_time")),
                _when(resv.get("end_time")), resv.get("nodelist", ""), ",".join(resv.get("users") or []),
                ",".join(resv.get("accounts") or []), ",".join(resv.get("flags") or [])]

    def _apply(self, reservations):
        self.reservations = {r["name"]: r for r in reservations}
        esc = html.escape
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in self.row(r)) + "</tr>"
                       for r in sorted(reservations, key=lambda r: (r.get("start_time") or 0, r["name"])))
        if not body:
            body = f'<tr><td colspan="{len(self.COLUMNS)}"><i>No reservations.</i></td></tr>'
        self.table.value = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
