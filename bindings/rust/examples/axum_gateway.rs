//! An LLM gateway with per-key hard caps: axum in front of a model, with
//! sqlite-quota keeping the caps.
//!
//! `POST /v1/chat/completions` with `Authorization: Bearer KEY` and a JSON
//! body `{"max_tokens": N, ...}`:
//!
//! 1. reserves `max_tokens` on the key (`quota_reserve`), before any work;
//! 2. when that is denied, answers from `quota_status` without calling the
//!    model: 429 Too Many Requests with `Retry-After` for a period or a
//!    rolling window (`rate_limit_exceeded`), 402 Payment Required with no
//!    `Retry-After` for a spent lifetime balance (`insufficient_quota`);
//! 3. otherwise calls the model and settles the tokens it reports
//!    (`quota_settle`), or releases the hold when the call fails
//!    (`quota_release`).
//!
//! An `Idempotency-Key` header is the request id: a client that retries
//! after a lost answer gets the same hold, not a second one.
//!
//! The model is a stand-in (`call_model`) that answers at once and reports
//! 15 tokens. SQLite calls block, so they run on tokio's blocking pool
//! (`spawn_blocking`), on one connection behind a mutex.
//!
//! Run it: `cargo run --example axum_gateway`, then
//!
//! ```text
//! curl -i -H 'Authorization: Bearer sk-demo' -H 'Content-Type: application/json' \
//!      -d '{"max_tokens": 400}' http://127.0.0.1:3000/v1/chat/completions
//! ```
//!
//! `cargo test --example axum_gateway` runs the tests at the end of this file.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Gateway {
    db: Arc<Mutex<Connection>>,
}

/// The router, serving quota keys from `conn` (the extension loaded, the
/// quota table created).
fn app(conn: Connection) -> Router {
    let gateway = Gateway { db: Arc::new(Mutex::new(conn)) };
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(gateway)
}

impl Gateway {
    /// Runs `f` on the connection, off the async threads.
    async fn sql<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db.lock().unwrap()))
            .await
            .expect("a SQLite call panicked")
    }
}

async fn chat(State(gw): State<Gateway>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let Some(key) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
    else {
        return error(StatusCode::UNAUTHORIZED, "invalid_api_key", "no bearer key");
    };
    let max_tokens = body["max_tokens"].as_i64().unwrap_or(256);
    let request_id = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    // 1. Reserve the most the request can cost.
    let k = key.clone();
    let hold = gw
        .sql(move |db| {
            db.query_row(
                "SELECT quota_reserve(?1, ?2, ?3)",
                params![k, max_tokens, request_id],
                |r| r.get::<_, Option<i64>>(0),
            )
        })
        .await;
    let hold = match hold {
        Ok(Some(hold)) => hold,
        // 2. Denied: say why, and when to come back.
        Ok(None) => {
            let status = gw
                .sql(move |db| {
                    db.query_row("SELECT quota_status(?1, ?2)", params![key, max_tokens], |r| {
                        r.get::<_, String>(0)
                    })
                })
                .await;
            return match status {
                Ok(s) => refusal(&serde_json::from_str(&s).expect("quota_status is JSON")),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &e.to_string()),
            };
        }
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such quota key") => {
            return error(StatusCode::UNAUTHORIZED, "invalid_api_key", &m);
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &e.to_string()),
    };

    // 3. Do the work; charge what it cost, or give the hold back.
    match call_model(&body, max_tokens).await {
        Ok((answer, tokens)) => {
            let charged = gw
                .sql(move |db| {
                    db.query_row("SELECT quota_settle(?1, ?2)", params![hold, tokens], |r| {
                        r.get::<_, Option<i64>>(0)
                    })
                })
                .await;
            match charged {
                Ok(_) => Json(json!({
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                    "usage": {"total_tokens": tokens}
                }))
                .into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &e.to_string()),
            }
        }
        Err(why) => {
            let _ = gw
                .sql(move |db| {
                    db.query_row("SELECT quota_release(?1)", params![hold], |r| r.get::<_, i64>(0))
                })
                .await;
            error(StatusCode::BAD_GATEWAY, "upstream_error", &why)
        }
    }
}

/// The HTTP answer to a denied reservation, from quota_status's JSON.
/// OpenAI-style clients expect 429 for both codes (and retry only
/// `rate_limit_exceeded`); this gateway answers 402 for a spent balance,
/// which waiting will not fix. Change it here to suit your clients.
fn refusal(status: &Value) -> Response {
    let code = status["code"].as_str().unwrap_or("rate_limit_exceeded");
    let http = match code {
        "insufficient_quota" => StatusCode::PAYMENT_REQUIRED,
        _ => StatusCode::TOO_MANY_REQUESTS,
    };
    let message = format!(
        "quota exceeded for {} (limited by {}): {} remaining",
        status["key"].as_str().unwrap_or("?"),
        status["limited_by"].as_str().unwrap_or("?"),
        status["remaining"]
    );
    let mut response = error(http, code, &message);
    // retry_after is null for a lifetime balance, else whole seconds >= 1.
    if let Some(seconds) = status["retry_after"].as_i64() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn error(http: StatusCode, code: &str, message: &str) -> Response {
    (http, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// Stand-in for the upstream model: the answer and the tokens it used.
async fn call_model(_body: &Value, max_tokens: i64) -> Result<(String, i64), String> {
    Ok(("ok".to_string(), max_tokens.min(15)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conn = Connection::open("gateway.db")?;
    sqlite_quota::load(&conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS quota USING quota;
         INSERT OR IGNORE INTO quota(key, cap) VALUES ('acct-demo', NULL);
         INSERT OR IGNORE INTO quota(key, cap, period, parent)
           VALUES ('sk-demo', 1000, 'rolling 1 hour', 'acct-demo');",
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(conn)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    /// The app over an in-memory store with one key.
    fn gateway(cap: i64, period: Option<&str>) -> Router {
        let conn = Connection::open_in_memory().unwrap();
        sqlite_quota::load(&conn).unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE quota USING quota").unwrap();
        conn.execute(
            "INSERT INTO quota(key, cap, period) VALUES ('sk-cap', ?1, ?2)",
            params![cap, period],
        )
        .unwrap();
        app(conn)
    }

    /// Status, Retry-After and JSON body of one request.
    async fn post(app: &Router, key: &str, max_tokens: i64) -> (StatusCode, Option<String>, Value) {
        let request = Request::post("/v1/chat/completions")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"model": "m", "max_tokens": max_tokens}).to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn spent_balance_is_402_insufficient_quota_without_retry_after() {
        let app = gateway(10, None);
        let (status, retry, body) = post(&app, "sk-cap", 1000).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(retry, None);
        assert_eq!(body["error"]["code"], "insufficient_quota");
    }

    #[tokio::test]
    async fn rolling_window_is_429_rate_limit_exceeded_with_retry_after() {
        let app = gateway(10, Some("rolling 3600 seconds"));
        let (status, retry, body) = post(&app, "sk-cap", 1000).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let retry: i64 = retry.expect("Retry-After").parse().unwrap();
        assert!(retry >= 1);
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    }

    #[tokio::test]
    async fn within_cap_is_served_and_settled() {
        let app = gateway(100, None);
        let (status, retry, body) = post(&app, "sk-cap", 50).await;
        assert_eq!((status, retry), (StatusCode::OK, None));
        assert_eq!(body["usage"]["total_tokens"], 15);
        // 15 charged of 100: 85 left, so 90 is refused and 85 is served.
        assert_eq!(post(&app, "sk-cap", 90).await.0, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(post(&app, "sk-cap", 85).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_key_is_401() {
        let app = gateway(100, None);
        let (status, _, body) = post(&app, "sk-nobody", 50).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["message"], "quota_reserve: no such quota key: 'sk-nobody'");
    }
}
