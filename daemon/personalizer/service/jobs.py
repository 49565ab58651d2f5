"""The command queue: commands from MQTT, buttons and the web page, carried out one at a time.

Producers (paho's network thread, gpiozero's pin threads, the web server's loop) only queue a
job, never do the work; the command thread takes jobs one by one (:meth:`CommandQueue.next`),
parses what came raw from MQTT, runs it through the engine and sends the result back to whoever
asked. A full queue, or a service that stops, refuses at once with a reason. Parts of the
service that must change the state in the command thread (the fleet taking the group's samples,
the engine keeping a frame for review) queue a *task* (:meth:`CommandQueue.put_task`): a
function run in its turn, between commands.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..commands import Command, CommandError, CommandLimits, parse_command, reply

log = logging.getLogger(__name__)

COMMAND_QUEUE_SIZE = 32
Reply = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """One queued command: raw from MQTT (`name` + `payload`) or already typed (`command`);
    or a function of the service's own to run in this thread (`task`: the fleet's turns, a frame
    kept for review), which is run as it is."""

    name: str
    payload: bytes | None
    command: Command | None
    reply: Reply | None
    task: Callable[[], None] | None = None


class CommandQueue:
    """A bounded queue of jobs and the way each one is carried out."""

    def __init__(
        self,
        execute: Callable[[Command], dict[str, Any]],
        limits: CommandLimits,
        stop: threading.Event,
    ) -> None:
        """Runs commands with ``execute``; parses MQTT payloads within ``limits``."""
        self._execute = execute
        self.limits = limits
        self._stop = stop
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=COMMAND_QUEUE_SIZE)

    def put(self, job: Job) -> bool:
        """Queue ``job``; False (and an ``ok: false`` reply) when full or stopping."""
        if not self._stop.is_set():
            try:
                self._jobs.put_nowait(job)
                return True
            except queue.Full:
                reason = "busy: too many commands are waiting; try again in a moment"
        else:
            reason = "the daemon is stopping"
        if job.reply is not None:
            job.reply(reply(None, error=reason))
        return False

    def put_task(
        self, task: Callable[[], None], name: str = "a task of the command thread"
    ) -> bool:
        """Queue ``task`` to run in the command thread; False when the queue is full or the
        service stops (the caller asks again later, or lets it go)."""
        return self.put(Job(name, None, None, None, task))  # no reply to send

    def next(self, timeout: float) -> Job | None:
        """The next job, waiting up to ``timeout`` seconds (None: none came)."""
        try:
            return self._jobs.get(timeout=timeout)
        except queue.Empty:
            return None

    def run(self, job: Job) -> None:
        """Carry ``job`` out and send its result (never raises)."""
        if job.task is not None:
            try:
                job.task()
            except Exception:
                log.exception("%s failed", job.name)
            return
        request_id = None
        try:
            command = job.command
            if command is None:
                command = parse_command(job.name, job.payload or b"", self.limits)
            request_id = command.request_id
            result = reply(request_id, **self._execute(command))
        except CommandError as exc:
            rid = exc.request_id if exc.request_id is not None else request_id
            log.info("command %s refused: %s", job.name, exc.reason)
            result = reply(rid, error=exc.reason)
        except Exception as exc:
            log.exception("command %s failed", job.name)
            result = reply(request_id, error=f"internal error: {exc}")
        if job.reply is not None:
            try:
                job.reply(result)
            except Exception:
                log.exception("sending the result of %s failed", job.name)
