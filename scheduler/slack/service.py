"""POST /slack/commands: the route of the daemon's HTTP server that serves Slack's slash
commands, while jobs.yaml has `notify.slack_commands` (read at each request, so a reload that
adds, removes or rotates it takes effect at once; without it the path answers 404 as any
unknown one).

1. The signature first (signing.py): a request that is not Slack's, is stale or is a replay is
   answered 401 and nothing else is read of it.
2. Then who, where and what (commands.py): a refusal is answered at once, politely, to the one
   who asked only; it changes nothing.
3. Slack wants an answer within 3 s: the command's quick part (work.py) gets ACK_BUDGET_S;
   its first answer is the HTTP reply if it is ready by then, else "working on it" and the
   answer follows at the command's response_url. A run starts after that (so its
   acknowledgement is never late) and reports to response_url: progress while it lasts, the
   result when it ends.

Replies go through the notifications' dispatcher (retries, and a row in `history
notifications` per delivery, kind slack_reply, destination scheme and host only). The signing
secret is registered with the log masker and never put in an answer."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import structlog

from scheduler import logs
from scheduler.clock import Clock
from scheduler.config import url_problem
from scheduler.errors import SchedulerError
from scheduler.history import HistoryStore
from scheduler.httpd import Request, Response, Routes
from scheduler.notify import Dispatcher, Message
from scheduler.notify.channels import Request as Delivery
from scheduler.secret import Secret
from scheduler.slack import signing
from scheduler.slack.commands import Command, Invocation, decide, esc, help_text
from scheduler.slack.settings import SlackCommands
from scheduler.slack.work import Host, Post, Prepared, Work

log = structlog.get_logger("scheduler.slack")

PATH = "/slack/commands"
ACK_BUDGET_S = 2.0  # Slack gives up on an answer after 3 s
QUICK_WORKERS = 4  # reads and lookups
CLOSE_WAIT_S = 10.0  # how long close waits for commands under way
T = TypeVar("T")
RUN_WORKERS = 16  # runs at once from Slack; more wait their turn (the governor paces them anyway)
WORKING = "Working on it: the answer follows here."


class ResponseUrl:
    """A command's response_url as a notification channel: Slack posts the text in the channel
    the command came from (in_channel) or to its author only (ephemeral)."""

    name = "slack_reply"

    def __init__(self, url: str, *, in_channel: bool) -> None:
        self.url = Secret(url)  # it carries Slack's token for this one command
        self._in_channel = in_channel

    def request(self, message: Message) -> Delivery:
        kind = "in_channel" if self._in_channel else "ephemeral"
        body = {"response_type": kind, "text": message.text, "replace_original": False}
        return Delivery("POST", self.url, body)


def answer(text: str, *, in_channel: bool = False) -> Response:
    """The HTTP reply to a slash command: shown at once in Slack."""
    kind = "in_channel" if in_channel else "ephemeral"
    return Response.json(200, {"response_type": kind, "text": text})


class SlashCommands:
    """The route and what it needs: the daemon (as work.Host), history, a dispatcher for the
    replies, and the clock that says how old a request is."""

    def __init__(
        self,
        host: Host,
        store: HistoryStore,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        ack_budget_s: float = ACK_BUDGET_S,
        work: Work | None = None,
    ) -> None:
        self._host = host
        self._dispatcher = dispatcher
        self._clock = clock
        self._ack_budget_s = ack_budget_s
        self._work = work or Work(host, store, clock)
        self._replays = signing.ReplayGuard()
        self._quick = ThreadPoolExecutor(QUICK_WORKERS, thread_name_prefix="slack-quick")
        self._runs = ThreadPoolExecutor(RUN_WORKERS, thread_name_prefix="slack-run")
        self._closed = threading.Event()
        self._pending: set[Future[object]] = set()  # work under way: close waits for it
        self._pending_lock = threading.Lock()

    def _track(self, future: Future[T]) -> Future[T]:
        with self._pending_lock:
            self._pending.add(future)  # type: ignore[arg-type]
        future.add_done_callback(self._untrack)
        return future

    def _untrack(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def add_routes(self, routes: Routes) -> Routes:
        return routes.add("POST", PATH, self.handle)

    def close(self, timeout_s: float = CLOSE_WAIT_S) -> None:
        """Take no new command; work already started (a run the daemon drains, reading its
        result, posting it) gets up to `timeout_s` to end, so that nothing of it uses the
        history or the dispatcher once they are closed behind it."""
        self._closed.set()
        self._quick.shutdown(wait=False, cancel_futures=True)
        self._runs.shutdown(wait=False)
        with self._pending_lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout_s)
        self._dispatcher.close()

    def handle(self, request: Request) -> Response:
        settings = self._host.config.notify.slack_commands
        if settings is None:
            return Response.text(404, "not found")
        logs.register_secret(settings.signing_secret.reveal())
        problem = self._unsigned(settings, request)
        if problem is not None:
            log.warning("slack.request_refused", reason=problem)
            return Response.text(401, problem)
        if b"ssl_check=1" in request.body:  # Slack checking the certificate: nothing to do
            return Response(200)
        asked = Invocation.from_form(request.body)
        if asked is None or url_problem(asked.response_url) is not None:
            return Response.text(400, "not a slash command (user, channel and response_url)")
        return self._command(settings, asked)

    def _command(self, settings: SlackCommands, asked: Invocation) -> Response:
        decided = decide(settings, asked)
        fields = {"user": asked.requested_by, "channel": asked.channel_id}
        if isinstance(decided, str):
            log.info("slack.command_refused", **fields, text=asked.text[:100], reason=decided)
            return answer(decided)
        log.info("slack.command", **fields, command=decided.name, args=list(decided.args))
        if decided.name == "help":
            return answer(help_text(settings, asked))
        if self._closed.is_set():
            return answer("The scheduler is stopping: try again once it is back.")
        return self._start(decided, asked)

    def _unsigned(self, settings: SlackCommands, request: Request) -> str | None:
        now_s = self._clock.now().timestamp()
        found = signing.problem(settings.signing_secret, request.headers, request.body, now_s)
        if found is None and not self._replays.first_time(request.headers, now_s):
            found = "replayed Slack request (its signature was seen already)"
        return found

    def _start(self, command: Command, asked: Invocation) -> Response:
        try:
            future = self._track(self._quick.submit(self._prepare, command, asked))
        except RuntimeError:  # closed meanwhile
            return answer("The scheduler is stopping: try again once it is back.")
        try:
            prepared = future.result(timeout=self._ack_budget_s)
        except FutureTimeout:
            future.add_done_callback(lambda done: self._late(done, asked))
            return answer(WORKING)
        self._then(prepared, asked)
        return answer(prepared.text, in_channel=prepared.in_channel)

    def _prepare(self, command: Command, asked: Invocation) -> Prepared:
        """The quick part; its failure is the answer (never a traceback, never a secret)."""
        try:
            return self._work.prepare(command, asked)
        except SchedulerError as exc:
            log.warning("slack.command_failed", command=command.name, error=str(exc))
            return Prepared(f"Could not answer `{command.name}`: {esc(logs.mask(str(exc)))}")
        except Exception:
            log.exception("slack.command_crashed", command=command.name)
            return Prepared(f"`{command.name}` failed: the daemon's log says why.")

    def _late(self, done: Future[Prepared], asked: Invocation) -> None:
        if done.cancelled():
            return
        prepared = done.result()
        self._post(asked)(prepared.text, prepared.in_channel)
        self._then(prepared, asked)

    def _then(self, prepared: Prepared, asked: Invocation) -> None:
        """Start what the command does next (a run), reporting to its response_url."""
        then = prepared.then
        if then is None:
            return
        post = self._post(asked)

        def go() -> None:
            try:
                then(post)
            except Exception:
                log.exception("slack.run_crashed", user=asked.requested_by)
                post("The run could not be followed to its end: the daemon's log says why.", True)

        try:
            self._track(self._runs.submit(go))
        except RuntimeError:  # closed meanwhile: the daemon is stopping
            post("Not started: the scheduler is stopping.", True)

    def _post(self, asked: Invocation) -> Post:
        def post(text: str, in_channel: bool) -> None:
            channel = ResponseUrl(asked.response_url, in_channel=in_channel)
            try:
                self._dispatcher.deliver(channel, Message("slack_reply", None, None, text))
            except RuntimeError as exc:  # its client closed: the daemon stopped meanwhile
                log.warning("slack.reply_dropped", reason=str(exc))

        return post
