"""The `refresh-due` sweep: refresh every token pair that expires soon or whose refresh token is ageing."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from smartapp import logs
from smartapp.deadline import Deadline
from smartapp.errors import SmartAppError
from smartapp.oauth import build_provider
from smartapp.outbound import size_pool
from smartapp.settings import Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import Installation, Store
from smartapp.tokens import KINDS, TokenKeeper, TokenKind, expires_within
from smartapp.wiring import build_keeper, checked, open_configured_store

log = logging.getLogger(__name__)

# SmartThings refresh tokens die after 30 days unused: renew them well before.
REFRESH_TOKEN_MAX_AGE = 25 * 24 * 3600
DEFAULT_WITHIN_SECONDS = 3600
# One installation's refreshes: lock wait plus one token call each, with room to spare.
INSTALLATION_BUDGET_SECONDS = 30.0


@dataclass(frozen=True)
class Failure:
    installed_app_id: str
    token_kind: str
    reason: str


@dataclass(frozen=True)
class RefreshReport:
    checked: int = 0                      # installations looked at
    refreshed: int = 0                    # token pairs this run refreshed
    already_fresh: int = 0                # due when listed, refreshed meanwhile by another host or worker
    needs_reauth: tuple[str, ...] = ()    # flagged before this run; not retried (needs UPDATE or a re-link)
    failures: tuple[Failure, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        """Non-zero when any refresh failed in this run (a scheduler's alert)."""
        return 1 if self.failures else 0

    @classmethod
    def combine(cls, reports: list[RefreshReport]) -> RefreshReport:
        """One report for a sweep that ran in several processes."""
        return cls(checked=sum(r.checked for r in reports), refreshed=sum(r.refreshed for r in reports),
                   already_fresh=sum(r.already_fresh for r in reports),
                   needs_reauth=tuple(iaid for r in reports for iaid in r.needs_reauth),
                   failures=tuple(failure for r in reports for failure in r.failures))


def is_due(record: Installation, kind: TokenKind, *, now: float, within_seconds: float) -> bool:
    pair = kind.pair(record)
    if pair.refresh_token is None or record.reauth_required == kind.rejected:
        return False
    if expires_within(record, kind, within_seconds, now=now):
        return True
    return pair.refresh_issued_at is not None and now - pair.refresh_issued_at > REFRESH_TOKEN_MAX_AGE


def sweep(*, store: Store, keeper: TokenKeeper, within_seconds: float = DEFAULT_WITHIN_SECONDS,
          concurrency: int = 8, clock: Callable[[], float] = time.time,
          ids: Iterable[str] | None = None) -> RefreshReport:
    """Safe on several hosts at once: each refresh re-checks due-ness under the installation's lock."""
    ids = list(store.installed_app_ids() if ids is None else ids)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="refresh-due") as pool:
        outcomes = list(pool.map(lambda iaid: _one(iaid, store, keeper, within_seconds, clock), ids))
    counts = {"refreshed": 0, "already_fresh": 0}
    needs_reauth: list[str] = []
    failures: list[Failure] = []
    for installed_app_id, results in zip(ids, outcomes):
        for kind_name, result in results:
            if result in counts:
                counts[result] += 1
            elif result == "flagged":
                needs_reauth.append(installed_app_id)
            else:
                failures.append(Failure(installed_app_id, kind_name, result))
    return RefreshReport(checked=len(ids), needs_reauth=tuple(dict.fromkeys(needs_reauth)),
                         failures=tuple(failures), **counts)


def _one(installed_app_id: str, store: Store, keeper: TokenKeeper, within_seconds: float,
         clock: Callable[[], float]) -> list[tuple[str, str]]:
    """(kind, outcome) for each due pair: refreshed, already_fresh, flagged, or a failure reason."""
    results: list[tuple[str, str]] = []
    deadline = Deadline.after(INSTALLATION_BUDGET_SECONDS)
    try:
        record = store.get(installed_app_id)
    except SmartAppError as error:
        return [("store", error.reason)]
    if record is None:
        return results  # uninstalled since the listing
    for kind in KINDS.values():
        if record.reauth_required == kind.rejected:
            results.append((kind.name, "flagged"))
            continue
        if not is_due(record, kind, now=clock(), within_seconds=within_seconds):
            continue
        if kind.name not in keeper.refreshers:
            log.warning("refresh_skipped", extra={"reason": "provider_not_configured",
                                                  "installedAppId": installed_app_id, "tokenKind": kind.name})
            continue
        try:
            outcome = keeper.refresh_if(installed_app_id, kind.name,
                                        lambda latest, k=kind: is_due(latest, k, now=clock(),
                                                                      within_seconds=within_seconds),
                                        deadline=deadline)
            results.append((kind.name, "refreshed" if outcome.refreshed else "already_fresh"))
        except SmartAppError as error:
            results.append((kind.name, error.reason))
        except Exception:  # noqa: BLE001 - one broken installation must not stop the sweep
            log.exception("refresh_crashed", extra={"reason": "internal_error", "installedAppId": installed_app_id,
                                                    "tokenKind": kind.name})
            results.append((kind.name, "internal_error"))
    return results


def run(*, settings: Settings, within_seconds: float = DEFAULT_WITHIN_SECONDS, concurrency: int = 8,
        processes: int = 1, clock: Callable[[], float] = time.time) -> RefreshReport:
    """Open the configured store and sweep it; ConfigError when the settings cannot run.

    `concurrency` installations are refreshed at once in all; with `processes` > 1 they are split
    over that many processes, because one process's refreshes share one core (the GIL).
    """
    checked(settings)
    if processes <= 1:
        return _sweep_in_this_process(settings, None, within_seconds, concurrency, clock)
    if clock is not time.time:
        raise ValueError("a sweep over several processes runs on the wall clock")
    build_provider(settings)  # a provider it cannot build is a ConfigError (exit 2) here, not a dead process
    store = open_configured_store(settings, clock=clock)
    try:
        ids = list(store.installed_app_ids())
    finally:
        store.close()
    return _sweep_in_processes(settings, ids, within_seconds, concurrency, min(processes, concurrency))


def _sweep_in_processes(settings: Settings, ids: list[str], within_seconds: float, concurrency: int,
                        processes: int) -> RefreshReport:
    """Split `ids` over `processes` spawned processes and add up their reports."""
    shards = [shard for shard in (ids[index::processes] for index in range(processes)) if shard]
    # spawn, not fork: the caller may run threads (a fork copies their locks mid-use).
    context = multiprocessing.get_context("spawn")
    # A spawned process starts with no log handlers: it logs like this one, or not at all.
    log_format = settings.log_format if logs.configured() else None
    # One process per shard, each joined on its own: if one dies, the others finish their refreshes
    # (a process pool would terminate them mid-call, losing refresh tokens already rotated upstream).
    running = []
    for index, shard in enumerate(shards):
        # The concurrency is shared out, so that in all no more than `concurrency` refreshes run at once.
        threads = concurrency // len(shards) + (index < concurrency % len(shards))
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_sweep_shard, name=f"refresh-due-{index}",
                                  args=(sender, settings, shard, within_seconds, threads, log_format))
        process.start()
        sender.close()  # the child holds the only sending end: its death reads as end-of-file here
        running.append((shard, process, receiver))
    reports = []
    for shard, process, receiver in running:
        try:
            report = _receive_report(receiver)
        finally:
            process.join()
        if report is None:
            # Killed (OOM, signal) or crashed: its installations are not known to be fresh, so they count as failed.
            log.error("refresh_process_died", extra={"reason": "sweep_process_died", "installations": len(shard),
                                                     "exitCode": process.exitcode})
            report = RefreshReport(checked=len(shard), failures=tuple(
                Failure(installed_app_id, "any", "sweep_process_died") for installed_app_id in shard))
        reports.append(report)
    return RefreshReport.combine(reports)


def _receive_report(receiver: Connection) -> RefreshReport | None:
    """The report a sweep process sent, or None if it died first (or part-way through sending it)."""
    try:
        return receiver.recv()
    except (EOFError, OSError):  # EOFError: nothing sent; OSError: a large report cut short
        return None
    finally:
        receiver.close()


def _sweep_shard(sender: Connection, settings: Settings, ids: list[str], within_seconds: float, concurrency: int,
                 log_format: str | None) -> None:
    """A sweep process: sweep `ids`, send the report back to the parent."""
    if log_format is not None:
        logs.configure(log_format)
    report = _sweep_in_this_process(settings, ids, within_seconds, concurrency, time.time)
    try:
        sender.send(report)
    except BrokenPipeError:
        pass  # the parent was stopped; the refreshes are done and stored, only its summary is lost
    finally:
        sender.close()


def _sweep_in_this_process(settings: Settings, ids: list[str] | None, within_seconds: float, concurrency: int,
                           clock: Callable[[], float]) -> RefreshReport:
    """Sweep `ids` (None: every installation) with this process's own store connections and HTTP sessions."""
    provider = build_provider(settings)
    store = open_configured_store(settings, clock=clock)
    try:
        smartthings = SmartThingsClient(api_url=settings.api_url)
        size_pool(smartthings.session, concurrency)  # every thread keeps its connection to the token endpoint
        keeper = build_keeper(store=store, smartthings=smartthings, settings=settings, provider=provider, clock=clock)
        return sweep(store=store, keeper=keeper, within_seconds=within_seconds, concurrency=concurrency, clock=clock,
                     ids=ids)
    finally:
        store.close()
