"""The refresh machinery every live dashboard shares: one query per interval from a daemon thread.

A dashboard subclasses :class:`Poller`, builds its widgets (``self.widget``,
``self.status``) and implements ``_query()`` (exactly one backend call) and
``_apply(data)`` (update the widgets). The poller never blocks the kernel,
stops when the widget is closed (its comm goes away) or :meth:`Poller.stop` /
:meth:`Poller.close` is called, and keeps polling while the controller does
not answer, saying ``reconnecting...``.
"""

import threading
import time

from .backend import ControllerDown, QueueError, select_backend


class Poller:
    """A daemon thread calling ``refresh()`` every *interval* seconds until stopped or closed."""

    def _init_poller(self, backend, interval, start):
        self.backend = backend or select_backend()
        self.interval = interval
        self.queries = 0
        self.refreshes = 0
        self.error = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        if start:
            self.start()

    def start(self):
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def stop(self):
        """Stop refreshing (the widget stays shown with its last values)."""
        self._stop.set()

    def close(self):
        """Stop refreshing and close the widgets."""
        self.stop()
        self.widget.close()

    @property
    def polling(self):
        return self._thread.is_alive()

    def _closed(self):
        return self._stop.is_set() or getattr(self.widget, "comm", True) is None

    def _run(self):
        while not self._closed():
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                self.status.value = f"error: {e}"
            if self._stop.wait(self.interval):
                break

    def refresh(self):
        """One query, then the widgets follow it; returns True if the queue answered."""
        with self._lock:
            self.queries += 1
            try:
                data = self._query()
            except ControllerDown:
                self.error = "reconnecting"
                self.status.value = "reconnecting... (the queue controller does not answer)"
                return False
            except QueueError as e:
                self.error = str(e)
                self.status.value = f"error: {e}"
                return False
            self.error = None
            self.refreshes += 1
            self._apply(data)
            self.status.value = f"updated {time.strftime('%H:%M:%S')}"
            return True

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
