"""A FastAPI service on sqlite-quota: two quota schemes that applications wrote by hand, ported.

1. Per-API-key monthly token quota (an LLM API server; sync endpoints,
   SQLAlchemy):
     POST   /users/{user}/apikeys            create a key (unlimited at first)
     GET    /users/{user}/apikeys/{id}       its quota, usage and reset date
     PATCH  /users/{user}/apikeys/{id}       token_quota_monthly (0 or null
                                             clears it), reset_usage, description
     DELETE /users/{user}/apikeys/{id}
     POST   /v1/chat/completions             X-Api-Key-Id header: 429 "Token
                                             quota reached" while used >= quota,
                                             else answer and record the tokens
   The key is a quota row 'apikey:ID' with period 'month': the counter rolls
   over by itself at the start of each month; record charges what the call
   used (it may end past the quota, as the original did; the ledger marks it
   'over'), and does nothing for a key deleted while the call ran.

2. Premium calls billed in micro-dollars (a research assistant; async
   endpoints, aiosqlite):
     POST /users/{user}/billing              premium limit (a lifetime balance)
     GET  /users/{user}/billing              used, reserved, remaining, audit rows
     POST /v1/billable                       billable_call(): reserve the estimate,
                                             run the call, settle the actual cost;
                                             release on failure
   A denied reserve is a 402 with used/limit/remaining and runs nothing; the
   free tier reserves nothing but still writes an audit row (a ledger row on
   the user's uncapped 'free:' key); the quota calls commit on their own
   connection, so the caller's own transaction failing afterwards does not
   undo them.

Connections: quota calls go through engines in autocommit (each call
commits itself); application data through an engine whose transactions
begin with BEGIN IMMEDIATE (the SQLAlchemy recipe: the driver's own BEGIN
off, ours in the "begin" event).  Never hold one of those transactions open
while calling quota on another connection: both need the one write lock.
app.state.clock pins the extension's clock for tests; app.state.before_model
is called just before each model call (tests use it to interleave requests).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

import anyio
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import sqlite_quota
from sqlite_quota import Quota, QuotaExceeded
from sqlite_quota.aio import AsyncQuota

log = logging.getLogger("quota_app")


# --- the seed-001 billing layer ----------------------------------------------------

class QuotaInsufficientError(Exception):
    def __init__(self, usage_type: str, used: int, limit: Optional[int], remaining: Optional[int]):
        super().__init__("%s: premium credit exhausted" % usage_type)
        self.usage_type, self.used_micros = usage_type, used
        self.limit_micros, self.remaining_micros = limit, remaining


class BillingSettlementError(Exception):
    pass


class ProviderError(Exception):
    pass


@dataclass
class Accumulator:
    """What the calls inside a billable_call() cost (fed by the model client)."""
    calls: List[Dict[str, Any]] = field(default_factory=list)

    def add(self, *, model: str, prompt_tokens: int = 0, completion_tokens: int = 0,
            cost_micros: int = 0, call_kind: str = "chat") -> None:
        self.calls.append({"model": model, "prompt_tokens": prompt_tokens,
                           "completion_tokens": completion_tokens,
                           "cost_micros": cost_micros, "call_kind": call_kind})

    @property
    def cost_micros(self) -> int:
        return sum(c["cost_micros"] for c in self.calls)


@contextlib.asynccontextmanager
async def billable_call(q: AsyncQuota, *, user_id: str, billing_tier: str, base_model: str,
                        usage_type: str, reserve_micros: int, request_id: str,
                        call_details: Optional[Dict[str, Any]] = None
                        ) -> AsyncIterator[Accumulator]:
    acc = Accumulator()
    if billing_tier == "free":
        yield acc
        try:                                   # the audit row is best effort
            await q.record("free:" + user_id, acc.cost_micros, request_id,
                           meta={"usage_type": usage_type, "model": base_model,
                                 "details": call_details})
        except Exception:
            log.exception("audit row for %s failed", request_id)
        return
    try:
        hold = await q.reserve("premium:" + user_id, reserve_micros, request_id=request_id)
    except QuotaExceeded as e:
        s = e.status
        raise QuotaInsufficientError(usage_type, s.used, s.cap, s.remaining) from e
    async with hold:                           # released if anything below raises
        yield acc
        try:
            await hold.settle(acc.cost_micros,
                              meta={"usage_type": usage_type, "model": base_model,
                                    "details": call_details, "calls": len(acc.calls)})
        except Exception as e:
            raise BillingSettlementError("settling %s failed: %s" % (request_id, e)) from e


# --- request bodies -------------------------------------------------------------------

class ApiKeyCreate(BaseModel):
    description: str = ""


class ApiKeyPatch(BaseModel):
    description: Optional[str] = None
    token_quota_monthly: Optional[int] = None
    reset_usage: bool = False


class ChatRequest(BaseModel):
    prompt: str
    completion_tokens: int = 10
    request_id: Optional[str] = None


class BillingSetup(BaseModel):
    premium_limit_micros: int


class BillableRequest(BaseModel):
    user_id: str
    billing_tier: str = "premium"
    base_model: str = "openai/gpt-image-1"
    usage_type: str = "image_generation"
    reserve_micros: int = 50_000
    cost_micros: int = 40_000
    request_id: str
    provider_error: bool = False
    fail_after_billing: bool = False
    call_details: Optional[Dict[str, Any]] = None


# --- the application ------------------------------------------------------------------

def create_app(db_path: str, clock: Optional[str] = None) -> FastAPI:
    app = FastAPI()
    app.state.clock = clock
    app.state.before_model = None
    app.state.model_calls = 0
    url = "sqlite:///" + db_path
    aurl = "sqlite+aiosqlite:///" + db_path
    args = {"timeout": 10}
    quota_engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args=args)
    app_engine = create_engine(url, connect_args=args)
    aquota_engine = create_async_engine(aurl, isolation_level="AUTOCOMMIT", connect_args=args)
    aapp_engine = create_async_engine(aurl, connect_args=args)

    def load(dbapi_connection: Any, record: Any) -> None:
        sqlite_quota.load(dbapi_connection)

    def take_over_begin(dbapi_connection: Any, record: Any) -> None:
        sqlite_quota.load(dbapi_connection)
        dbapi_connection.isolation_level = None        # the driver's BEGIN off

    def begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")        # ours: the write lock first

    def pin_clock(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        cur = dbapi_connection.cursor()      # NULL unpins: the system clock
        cur.execute("SELECT quota_clock(?)", (app.state.clock,))
        cur.close()

    event.listen(quota_engine, "connect", load)
    event.listen(aquota_engine.sync_engine, "connect", load)
    event.listen(app_engine, "connect", take_over_begin)
    event.listen(app_engine, "begin", begin_immediate)
    event.listen(aapp_engine.sync_engine, "connect", take_over_begin)
    event.listen(aapp_engine.sync_engine, "begin", begin_immediate)
    for engine in (quota_engine, app_engine, aquota_engine.sync_engine, aapp_engine.sync_engine):
        event.listen(engine, "checkout", pin_clock)

    with quota_engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode = WAL")   # not inside a transaction
    with app_engine.begin() as conn:
        conn.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS api_keys("
                             "id INTEGER PRIMARY KEY, owner TEXT NOT NULL, description TEXT)")
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS generations("
                             "id INTEGER PRIMARY KEY, user_id TEXT, request_id TEXT UNIQUE, "
                             "usage_type TEXT, cost_micros INTEGER)")

    def before_model() -> None:
        app.state.model_calls += 1
        if app.state.before_model is not None:
            app.state.before_model()

    def quota() -> Iterator[Quota]:
        with quota_engine.connect() as conn:
            yield Quota(conn)

    async def aquota() -> AsyncIterator[AsyncQuota]:
        async with aquota_engine.connect() as conn:
            yield AsyncQuota(conn)

    # --- 1. per-API-key monthly token quota --------------------------------------

    def key_view(conn: Any, user: str, key_id: int) -> Dict[str, Any]:
        row = conn.execute(text(
            "SELECT a.id, a.description, q.cap, q.used, q.resets_at FROM api_keys a "
            "JOIN quota q ON q.key = 'apikey:' || a.id WHERE a.id = :id AND a.owner = :user"),
            {"id": key_id, "user": user}).first()
        if row is None:
            raise HTTPException(404, "no such API key")
        return {"id": row[0], "description": row[1], "token_quota_monthly": row[2],
                "tokens_used_this_month": row[3], "quota_reset_at": row[4]}

    @app.post("/users/{user}/apikeys", status_code=201)
    def create_key(user: str, body: ApiKeyCreate) -> Dict[str, Any]:
        with app_engine.begin() as conn:
            key_id = conn.execute(text("INSERT INTO api_keys(owner, description) "
                                       "VALUES (:u, :d) RETURNING id"),
                                  {"u": user, "d": body.description}).scalar_one()
            conn.execute(text("INSERT INTO quota(key, cap, period) VALUES (:k, NULL, 'month')"),
                         {"k": "apikey:%d" % key_id})
            return key_view(conn, user, key_id)

    @app.get("/users/{user}/apikeys/{key_id}")
    def get_key(user: str, key_id: int) -> Dict[str, Any]:
        with quota_engine.connect() as conn:
            return key_view(conn, user, key_id)

    @app.patch("/users/{user}/apikeys/{key_id}")
    def patch_key(user: str, key_id: int, body: ApiKeyPatch) -> Dict[str, Any]:
        with app_engine.begin() as conn:
            key_view(conn, user, key_id)                     # 404 when not the user's
            k = {"k": "apikey:%d" % key_id}
            if body.description is not None:
                conn.execute(text("UPDATE api_keys SET description = :d WHERE id = :id"),
                             {"d": body.description, "id": key_id})
            if "token_quota_monthly" in body.model_fields_set:
                cap = body.token_quota_monthly or None       # 0 clears it, as null does
                conn.execute(text("UPDATE quota SET cap = :cap WHERE key = :k"),
                             dict(k, cap=cap))
            if body.reset_usage:
                conn.execute(text("UPDATE quota SET used = 0 WHERE key = :k"), k)
            return key_view(conn, user, key_id)

    @app.delete("/users/{user}/apikeys/{key_id}", status_code=204)
    def delete_key(user: str, key_id: int) -> None:
        with app_engine.begin() as conn:
            key_view(conn, user, key_id)
            conn.execute(text("DELETE FROM api_keys WHERE id = :id"), {"id": key_id})
            conn.execute(text("DELETE FROM quota WHERE key = :k"), {"k": "apikey:%d" % key_id})

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest, x_api_key_id: int = Header(...),
             q: Quota = Depends(quota)) -> Dict[str, Any]:
        key = "apikey:%d" % x_api_key_id
        try:
            status = q.status(key)
        except OperationalError as e:
            if "no such quota key" in str(e):
                raise HTTPException(401, "invalid API key")
            raise
        if not status.allowed:
            headers = {"Retry-After": str(status.retry_after)} if status.retry_after else None
            raise HTTPException(429, "Token quota reached for this API key "
                                     "(%d of %d tokens this month)" % (status.used, status.cap),
                                headers=headers)
        before_model()
        tokens = len(body.prompt.split()) + body.completion_tokens   # the model's usage
        ledger_id = q.record(key, tokens, body.request_id, meta={"model": "demo-1"})
        return {"answer": "echo: " + body.prompt, "usage": {"total_tokens": tokens},
                "recorded": ledger_id is not None}

    # --- 2. premium calls billed in micro-dollars --------------------------------

    @app.post("/users/{user}/billing", status_code=201)
    def setup_billing(user: str, body: BillingSetup) -> Dict[str, Any]:
        with app_engine.begin() as conn:
            conn.execute(text("INSERT INTO quota(key, cap, period) VALUES "
                              "(:p, :cap, 'lifetime'), (:f, NULL, 'lifetime')"),
                         {"p": "premium:" + user, "f": "free:" + user,
                          "cap": body.premium_limit_micros})
        return {"user": user, "premium_limit_micros": body.premium_limit_micros}

    @app.get("/users/{user}/billing")
    async def get_billing(user: str, q: AsyncQuota = Depends(aquota)) -> Dict[str, Any]:
        s = await q.status("premium:" + user)
        result = await q.conn.execute(text(
            "SELECT key, amount, request_id, meta FROM quota_ledger "
            "WHERE key IN (:p, :f) ORDER BY id"), {"p": "premium:" + user, "f": "free:" + user})
        return {"used_micros": s.used, "reserved_micros": s.reserved, "limit_micros": s.cap,
                "remaining_micros": s.remaining,
                "audit": [dict(r._mapping) for r in result]}

    @app.post("/v1/billable")
    async def billable(body: BillableRequest, q: AsyncQuota = Depends(aquota)) -> Dict[str, Any]:
        async with billable_call(q, user_id=body.user_id, billing_tier=body.billing_tier,
                                 base_model=body.base_model, usage_type=body.usage_type,
                                 reserve_micros=body.reserve_micros,
                                 request_id=body.request_id,
                                 call_details=body.call_details) as acc:
            await anyio.to_thread.run_sync(before_model)
            if body.provider_error:
                raise ProviderError("OpenRouter 503")
            acc.add(model=body.base_model, cost_micros=body.cost_micros,
                    call_kind=body.usage_type)
        # The caller's own transaction, after the quota calls have committed.
        async with aapp_engine.begin() as conn:
            await store_generation(conn, body, acc)
        return {"request_id": body.request_id, "cost_micros": acc.cost_micros}

    async def store_generation(conn: AsyncConnection, body: BillableRequest,
                               acc: Accumulator) -> None:
        await conn.execute(text("INSERT OR IGNORE INTO generations(user_id, request_id, usage_type, "
                                "cost_micros) VALUES (:u, :r, :t, :c)"),
                           {"u": body.user_id, "r": body.request_id, "t": body.usage_type,
                            "c": acc.cost_micros})
        if body.fail_after_billing:
            raise RuntimeError("storing the generation failed")

    @app.exception_handler(QuotaInsufficientError)
    async def insufficient(request: Request, e: QuotaInsufficientError) -> JSONResponse:
        return JSONResponse(status_code=402, content={"detail": {
            "code": "insufficient_quota", "usage_type": e.usage_type,
            "used_micros": e.used_micros, "limit_micros": e.limit_micros,
            "remaining_micros": e.remaining_micros}})

    @app.exception_handler(ProviderError)
    async def provider(request: Request, e: ProviderError) -> JSONResponse:
        return JSONResponse(status_code=502, content={"detail": str(e)})

    @app.exception_handler(BillingSettlementError)
    async def settlement(request: Request, e: BillingSettlementError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(e)})

    @app.exception_handler(RuntimeError)
    async def failed(request: Request, e: RuntimeError) -> JSONResponse:
        return JSONResponse(status_code=500, content={"detail": str(e)})

    @app.get("/first-of-next-month")
    def first_of_next_month(at: str, q: Quota = Depends(quota)) -> Dict[str, Any]:
        value = q.conn.execute(text("SELECT first_of_next_month(:t)"), {"t": at}).scalar()
        return {"at": at, "first_of_next_month": value}

    app.state.engines = (quota_engine, app_engine, aquota_engine, aapp_engine)
    return app


def dispose(app: FastAPI) -> None:
    """Close the pools (the async ones need an event loop)."""
    quota_engine, app_engine, aquota_engine, aapp_engine = app.state.engines
    quota_engine.dispose()
    app_engine.dispose()

    async def close() -> None:
        await aquota_engine.dispose()
        await aapp_engine.dispose()
    anyio.run(close)


__all__ = ["create_app", "dispose", "billable_call", "Accumulator", "QuotaInsufficientError",
           "BillingSettlementError", "ProviderError"]
