"""A thread that tells SQL a job's training process is alive, independent of how long a batch takes."""
from __future__ import annotations

import logging
import threading

from core.db import session_scope
from core.jobs import heartbeat

log = logging.getLogger("trainserve.worker")


class Heartbeat:
    """Beats every `interval_s` while the `with` block runs; `lost` is set when the job is no longer ours."""

    def __init__(self, job_id: str, worker: str, interval_s: float):
        self.job_id, self.worker, self.interval_s = job_id, worker, interval_s
        self.lost = threading.Event()
        self._done = threading.Event()
        self._beating = threading.Lock()  # held for a beat: stop() never lands between its UPDATE and verdict
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        """No beat after this returns: called before the job's final write, which a beat would read as the job
        being taken away (a false "no longer this worker's")."""
        with self._beating:
            self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        # a thread, not the batch loop: a long epoch or a slow evaluation still beats
        while not self._done.wait(self.interval_s):
            with self._beating:
                if self._done.is_set():
                    return
                try:
                    with session_scope() as session:
                        alive = heartbeat(session, job_id=self.job_id, worker=self.worker)
                except Exception as exc:  # a busy or unreachable DB: try again next beat; the timeout has slack
                    log.warning("heartbeat of job %s failed: %s", self.job_id, exc)
                    continue
                if not alive:  # requeued by the reaper (or cancelled): another attempt owns the job now
                    log.warning("job %s is no longer this worker's; stopping it", self.job_id)
                    self.lost.set()
                    return
