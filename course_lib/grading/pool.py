"""Grade many submissions in N worker processes, each with a time limit.

One submission that crashes, loops or hangs its worker costs that submission only: the worker's
process group is killed when the time limit passes (or it dies), the submission is listed with the
reason, and a fresh worker takes the next one. Results are merged into the course's gradebook by
this process alone, one submission at a time.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

from tqdm import tqdm

from . import files, gradebook


@dataclass
class Job:
    student: str
    assignment: str
    folder: str


@dataclass
class Outcome:
    student: str
    assignment: str
    status: str  # graded | rejected | error | timeout | skipped
    reason: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class WorkerProcess:
    _spawned = 0

    def __init__(self, course: Path, work_root: Path, release_dir: Path, answers: queue.Queue, env: dict):
        WorkerProcess._spawned += 1
        self.workdir = work_root / f"worker-{WorkerProcess._spawned}"
        self.log = open(work_root / f"worker-{WorkerProcess._spawned}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_lib.grading.worker", str(course), str(self.workdir),
             str(release_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, start_new_session=True)
        self.job: Job | None = None
        self.started = 0.0
        self.ready = False
        self.dead = False
        threading.Thread(target=self._read, args=(answers,), daemon=True).start()

    def _read(self, answers: queue.Queue) -> None:
        for line in self.proc.stdout:
            answers.put((self, line))
        answers.put((self, None))

    def send(self, job: Job) -> None:
        self.job, self.started = job, monotonic()
        self.proc.stdin.write(json.dumps(job.__dict__) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.dead = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def close(self) -> None:
        self.dead = True
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self.kill()
        self.log.close()


def _merge(worker_dir: Path, job: Job, outcome: Outcome, course: Path, course_db: str) -> Outcome:
    """Merge a graded submission from ``worker_dir`` into the course (or forget its old grade); return ``outcome``."""
    if outcome.status == "graded":
        try:
            gradebook.merge_submission(course_db, f"sqlite:///{worker_dir / 'gradebook.db'}",
                                       job.assignment, job.student)
            for sub in ("autograded", "feedback"):
                # plain files only, never through a link: only what the grader wrote reaches the course
                skipped = files.copy_regular_tree(worker_dir / sub / job.student / job.assignment,
                                                  course / sub / job.student / job.assignment)
                outcome.problems += [f"{sub}: {why}: not copied, flagged for review" for why in skipped]
        except Exception as error:  # noqa: BLE001 - a merge failure is this submission's problem only
            outcome.status, outcome.reason = "error", f"merging its grades failed: {error}"
    if outcome.status != "graded":
        gradebook.remove_submission(course_db, job.assignment, job.student)
        gradebook.ensure_student(course_db, job.student)
        for sub in ("autograded", "feedback"):
            shutil.rmtree(course / sub / job.student / job.assignment, ignore_errors=True)
    return outcome


def run(jobs: list[Job], course: Path, *, jobs_n: int, time_limit: float, work_root: Path, release_dir: Path,
        on_outcome=None, progress: bool = True) -> list[Outcome]:
    """Grade ``jobs`` in ``jobs_n`` workers; merge each graded one into ``course``'s gradebook."""
    if jobs_n < 1:
        raise ValueError(f"jobs_n must be >= 1, got {jobs_n}")
    if time_limit <= 0:
        raise ValueError(f"time_limit must be positive, got {time_limit}")
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("COURSE_RESULTS", None)
    course_db = gradebook.db_url(course)
    answers: queue.Queue = queue.Queue()
    pending = deque(jobs)
    workers = [WorkerProcess(course, work_root, release_dir, answers, env) for _ in range(min(jobs_n, len(jobs)))]
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(jobs), desc="grading", unit="submission", disable=not progress, file=sys.stderr)

    def finish(worker: WorkerProcess, job: Job, outcome: Outcome) -> None:
        outcomes.append(_merge(worker.workdir, job, outcome, course, course_db))
        bar.update(1)
        bar.set_postfix_str(f"{job.student}/{job.assignment}: {outcome.status}")
        if on_outcome:
            on_outcome(outcome)

    try:
        while pending or any(w.job for w in workers):
            for w in workers:
                if w.ready and w.job is None and pending:
                    w.send(pending.popleft())
            try:
                current, line = answers.get(timeout=0.5)
            except queue.Empty:
                current, line = None, None
            if current is not None and not current.dead:
                if line is None:  # the worker process died
                    job = current.job
                    workers[workers.index(current)] = WorkerProcess(course, work_root, release_dir, answers, env)
                    current.kill()
                    if job is not None:
                        finish(current, job, Outcome(
                            job.student, job.assignment, "error", "the grading worker died "
                            f"(exit code {current.proc.returncode}); see {current.log.name}",
                            monotonic() - current.started))
                else:
                    reply = json.loads(line)
                    if reply["status"] == "ready":
                        current.ready = True
                    elif current.job is not None:
                        job, current.job = current.job, None
                        finish(current, job, Outcome(
                            job.student, job.assignment, reply["status"], reply.get("reason", ""),
                            reply.get("seconds", 0.0), reply.get("notes", []), reply.get("flags", []),
                            reply.get("problems", [])))
            for i, w in enumerate(workers):
                if w.job is not None and monotonic() - w.started > time_limit:
                    job = w.job
                    workers[i] = WorkerProcess(course, work_root, release_dir, answers, env)
                    w.kill()
                    finish(w, job, Outcome(job.student, job.assignment, "timeout",
                                           f"over the time limit of {time_limit:.0f} s per submission: stopped",
                                           monotonic() - w.started))
    finally:
        for w in workers:
            if w.job is None:
                w.close()
            else:
                w.kill()
        bar.close()
    return outcomes
