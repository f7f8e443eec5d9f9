//! The guard in front of rmcp on `/mcp`: everything a request must pass before the
//! protocol sees it, with MCP's status conventions.
//!
//! 1. `Origin`: a browser origin not in `mcp_allowed_origins` gets `403`.
//! 2. The key (`Authorization: Bearer` or `X-Tool-API-Key`): missing or unknown gets
//!    `401` with `WWW-Authenticate` (MCP's convention; REST answers an unknown key
//!    with 403).
//! 3. `Mcp-Session-Id`: a session that does not exist, or that another key opened,
//!    gets `404`, as the spec says for an unknown session, so that a client
//!    re-initializes and a stolen id reveals nothing.
//! 4. The method of a POST is looked at, from the 2026-07-28 routing headers when
//!    present, else from the body (read within `body_limit_bytes`, `413` past it):
//!    `tools/call` of a tool outside the key's scope gets `403`
//!    (`insufficient_scope`); `initialize` past `mcp_max_sessions` gets `503`.
//! 5. The caller, trace id and span go into the request's extensions, where the
//!    handler finds them (rmcp hands the request head to it).
//! 6. A 2026-07-28 `tools/call` that needs no stream is answered by [`direct`];
//!    everything else goes on to rmcp.
//!
//! On the way out, a response that opened a session binds it to the key, a `GET`
//! notification stream is ended when the server starts to drain, and a `DELETE`
//! that ended a session answers `204`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use toolgate_core::{CancellationToken, ErrorKind, ToolError};

use super::RequestScope;
use super::direct;
use super::legacy_tasks;
use super::origin::Origins;
use super::reply::{
    self, BAD_KEY, BUSY, FORBIDDEN, NO_KEY, NO_SCOPE, SESSION_NOT_FOUND, UNAUTHORIZED, refusal,
};
use super::sessions::{KeyedSessions, NoSlot, Owner, SessionSlots};
use crate::auth::{Authenticated, Principal, presented_key};
use crate::{ApiError, AppState};

/// The session header (lowercase, as `http` stores names).
const SESSION_HEADER: &str = "mcp-session-id";

/// A refusal, boxed: responses are large and the happy path should not pay for them.
type Refused = Box<Response>;

/// How long a client refused for too many sessions should wait.
const SESSIONS_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the guard needs.
#[derive(Clone)]
pub(super) struct Guard {
    state: AppState,
    sessions: Arc<KeyedSessions>,
    origins: Arc<Origins>,
}

impl Guard {
    pub(super) fn new(state: &AppState, sessions: Arc<KeyedSessions>) -> Self {
        Self {
            origins: Arc::new(Origins::new(
                &state.limits.mcp_allowed_origins,
                state.local_addr.get().is_some_and(|a| a.ip().is_loopback()),
            )),
            state: state.clone(),
            sessions,
        }
    }
}

/// The few fields of a JSON-RPC message the guard looks at.
#[derive(Debug, Default, Deserialize)]
struct Peek {
    id: Option<Value>,
    method: Option<String>,
    params: Option<PeekParams>,
}

#[derive(Debug, Default, Deserialize)]
struct PeekParams {
    name: Option<String>,
    /// 2025-11-25: the call is to run as a task.
    task: Option<serde::de::IgnoredAny>,
}

/// The middleware (see the module docs for the order of checks).
pub(super) async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let (mut req, mut admitted) = match check(&g, req).await {
        Ok(passed) => passed,
        Err(refused) => return *refused,
    };
    let amend = match admitted.legacy.take() {
        Some((legacy_tasks::Legacy::Serve, bytes)) => {
            let Some(scope) = req.extensions().get::<RequestScope>().cloned() else {
                return reply::refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    rmcp::model::ErrorCode::INTERNAL_ERROR,
                    Value::Null,
                    None,
                );
            };
            return legacy_tasks::serve(&g.state, &scope, &bytes).await;
        }
        Some((kind, _)) => Some(kind),
        None => None,
    };
    if let Some(direct) = direct::qualifies(&req, &g.state.limits.mcp_allowed_hosts) {
        match direct::parse(direct, req, g.state.limits.body_limit_bytes).await {
            Ok(Ok((req, call))) => return direct::serve(&g.state, req, call).await,
            Ok(Err(not_direct)) => req = not_direct,
            Err(refused) => return refused,
        }
    }
    let mut response = next.run(req).await;
    if let Some(kind) = amend {
        response = legacy_tasks::amend(&g.state, kind, response).await;
    }
    if admitted.session.is_none()
        && let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        // This response opened a session: from now on only this key may use it.
        match admitted.slots {
            Some(slots) => g.sessions.bind(id, admitted.owner, slots),
            // Only an `initialize` opens a session, and it reserved its slots; should
            // anything else open one, it is closed rather than left unbounded.
            None => {
                tracing::error!("an MCP request other than initialize opened a session");
                let id: rmcp::transport::streamable_http_server::SessionId = Arc::from(id);
                let _ = rmcp::transport::streamable_http_server::SessionManager::close_session(
                    &*g.sessions,
                    &id,
                )
                .await;
            }
        }
    }
    match admitted.method {
        Method::GET => end_on_shutdown(response, &g.state),
        // rmcp answers a successful DELETE with 202; the session is gone, not pending,
        // and clients (the Python SDK among them) expect 200 or 204.
        Method::DELETE if response.status() == StatusCode::ACCEPTED => {
            let mut response = response;
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        _ => response,
    }
}

/// What the response side needs to know about a request that passed.
struct Admitted {
    /// The session owner this key is.
    owner: Owner,
    session: Option<String>,
    method: Method,
    /// The slots reserved for the session an `initialize` opens; given back when the
    /// response opened none.
    slots: Option<SessionSlots>,
    /// A 2025-11-25 request about tasks, and its body.
    legacy: Option<(legacy_tasks::Legacy, axum::body::Bytes)>,
}

/// Every check, in order; the request comes back with its scope in its extensions.
async fn check(g: &Guard, req: Request) -> Result<(Request, Admitted), Refused> {
    check_origin(&g.origins, req.headers())?;
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let routing = routed(req.headers());
    let (caller, owner) = authenticate(&g.state, &req)?;
    tracing::Span::current().record("key", caller.name.as_str());
    if let Some(id) = &session {
        check_session(&g.sessions, id, &owner)?;
    }
    let method = req.method().clone();
    let new_session = session.is_none();
    let mut slots = None;
    let mut legacy = None;
    let mut req = match (req.method() == Method::POST, routing) {
        // The headers name the method and tool, and rmcp refuses a body that says
        // otherwise: no need to read the body twice, unless to refuse it.
        (true, Some(peek)) => match admit(g, &caller, &peek, new_session) {
            Ok(reserved) => {
                slots = reserved;
                req
            }
            Err(_) => {
                let (req, peek, _) = buffer(req, g.state.limits.body_limit_bytes).await?;
                slots = admit(g, &caller, &peek, new_session)?;
                req
            }
        },
        // A session revision: its experimental tasks are served by the guard.
        (true, None) => {
            let (req, peek, bytes) = buffer(req, g.state.limits.body_limit_bytes).await?;
            slots = admit(g, &caller, &peek, new_session)?;
            let params = peek.params.as_ref();
            legacy = legacy_tasks::classify(
                &g.state,
                peek.method.as_deref(),
                params.and_then(|p| p.name.as_deref()),
                params.is_some_and(|p| p.task.is_some()),
            )
            .map(|kind| (kind, bytes));
            req
        }
        (false, _) => req,
    };
    req.extensions_mut().insert(RequestScope {
        caller,
        trace_id: crate::trace::current().unwrap_or_default(),
        span: tracing::Span::current(),
    });
    let admitted = Admitted {
        owner,
        session,
        method,
        slots,
        legacy,
    };
    Ok((req, admitted))
}

fn check_origin(origins: &Origins, headers: &HeaderMap) -> Result<(), Refused> {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    if origin.to_str().is_ok_and(|o| origins.allows(o)) {
        return Ok(());
    }
    tracing::warn!(origin = ?origin, "MCP request from a browser origin that is not allowed");
    let problem = ApiError::new(
        ErrorKind::Forbidden,
        "the Origin of this request is not in mcp_allowed_origins",
    );
    Err(Box::new(refusal(
        StatusCode::FORBIDDEN,
        None,
        FORBIDDEN,
        problem.to_problem(),
        None,
    )))
}

/// `404` unless session `id` is open and was opened by `owner`'s key.
fn check_session(sessions: &KeyedSessions, id: &str, owner: &Owner) -> Result<(), Refused> {
    match sessions.owner(id) {
        Some(opener) if opener.same_key(owner) => return Ok(()),
        Some(opener) => tracing::warn!(
            opened_by = %opener.name,
            presented_by = %owner.name,
            "an MCP session id was presented under another key; refused"
        ),
        None => {}
    }
    Err(Box::new(session_not_found()))
}

fn session_not_found() -> Response {
    let detail = "no such session for this key; send initialize to open one";
    let doc = reply::problem(
        "session_not_found",
        "Session not found",
        StatusCode::NOT_FOUND,
        detail,
    );
    refusal(StatusCode::NOT_FOUND, None, SESSION_NOT_FOUND, doc, None)
}

/// The key's principal (as the edge found it) and the session owner it is.
fn authenticate(state: &AppState, req: &Request) -> Result<(Arc<Principal>, Owner), Refused> {
    let unauthorized = |detail: &str, challenge| {
        let problem = ApiError::new(ErrorKind::Unauthorized, detail);
        refusal(
            StatusCode::UNAUTHORIZED,
            None,
            UNAUTHORIZED,
            problem.to_problem(),
            Some(std::borrow::Cow::Borrowed(challenge)),
        )
    };
    let found = req
        .extensions()
        .get::<Authenticated>()
        .map(|a| Arc::clone(&a.0));
    let caller = match found {
        Some(caller) => caller,
        None => {
            let Some(key) = presented_key(req.headers()) else {
                crate::gate::audit_refusal(state, "mcp", "unauthorized");
                return Err(Box::new(unauthorized(
                    "send an API key as `Authorization: Bearer KEY` or `X-Tool-API-Key: KEY`",
                    NO_KEY,
                )));
            };
            if let Some(refused) = req.extensions().get::<crate::gate::TokenRefused>() {
                return Err(Box::new(unauthorized(&refused.0, BAD_KEY)));
            }
            let Some(caller) = state.keys.verify(key) else {
                return Err(Box::new(unauthorized("the API key is not valid", BAD_KEY)));
            };
            caller
        }
    };
    let owner = Owner {
        name: caller.name.clone(),
        digest: caller.hash.digest(),
    };
    Ok((caller, owner))
}

/// The method and tool from the 2026-07-28 routing headers (`Mcp-Method`,
/// `Mcp-Name`). rmcp checks them against the body for that revision and later, so
/// they are trusted only there; older revisions do not send them.
fn routed(headers: &HeaderMap) -> Option<Peek> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let version = text("mcp-protocol-version")?;
    // Revisions are dates, so they compare as strings.
    if version < "2026-07-28" {
        return None;
    }
    Some(Peek {
        id: None,
        method: Some(text("mcp-method")?.to_owned()),
        params: Some(PeekParams {
            name: text("mcp-name").map(str::to_owned),
            task: None,
        }),
    })
}

/// Read the body (within `limit`) and peek at its method; the request is rebuilt with
/// the same bytes for rmcp.
async fn buffer(req: Request, limit: usize) -> Result<(Request, Peek, axum::body::Bytes), Refused> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Err(Box::new(too_large(limit)));
    };
    // A body that is not a JSON-RPC object is rmcp's to refuse, with its own error.
    let peek = serde_json::from_slice::<Peek>(&bytes).unwrap_or_default();
    Ok((
        Request::from_parts(parts, Body::from(bytes.clone())),
        peek,
        bytes,
    ))
}

/// `413` for a body over `limit` bytes.
pub(super) fn too_large(limit: usize) -> Response {
    let detail = format!("the body is larger than the limit of {limit} bytes");
    let problem = ApiError::new(ErrorKind::PayloadTooLarge, detail);
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        rmcp::model::ErrorCode::INVALID_REQUEST,
        problem.to_problem(),
        None,
    )
}

/// Refusals that depend on the message: scope (403) and the session limits (503
/// for all sessions, 429 for the key's own); an `initialize` that opens a session
/// gets its slots reserved.
fn admit(
    g: &Guard,
    caller: &Principal,
    peek: &Peek,
    new_session: bool,
) -> Result<Option<SessionSlots>, Refused> {
    match peek.method.as_deref() {
        Some("tools/call") => {
            let Some(tool) = peek.params.as_ref().and_then(|p| p.name.as_deref()) else {
                return Ok(None);
            };
            if caller.allows(tool) {
                return Ok(None);
            }
            if let Some(audit) = &g.state.audit {
                audit.record_refusal(
                    &caller.name,
                    caller.identity.as_ref(),
                    tool,
                    "mcp",
                    "forbidden",
                    crate::trace::current().unwrap_or_default(),
                );
            }
            let detail = format!("the key {:?} has no scope for tool {tool:?}", caller.name);
            let problem = ApiError::from_tool(ToolError::new(ErrorKind::Forbidden, detail), tool);
            let doc = problem.to_problem();
            // A token's caller learns which scopes would do (step-up authorization).
            let needed = match (&caller.identity, g.state.tokens.load_full()) {
                (Some(_), Some(tokens)) => tokens.scopes_for(tool),
                _ => Vec::new(),
            };
            let challenge = if needed.is_empty() {
                std::borrow::Cow::Borrowed(NO_SCOPE)
            } else {
                std::borrow::Cow::Owned(format!("{NO_SCOPE}, scope=\"{}\"", needed.join(" ")))
            };
            Err(Box::new(refusal(
                StatusCode::FORBIDDEN,
                peek.id.clone(),
                FORBIDDEN,
                doc,
                Some(challenge),
            )))
        }
        Some("initialize") if new_session => match g.sessions.reserve(caller) {
            Ok(slots) => Ok(Some(slots)),
            Err(NoSlot::Global(open)) => {
                tracing::warn!(sessions = open, "MCP session limit reached");
                let problem = ApiError::new(
                    ErrorKind::Overloaded,
                    "too many MCP sessions are open; retry shortly, or use protocol 2026-07-28, which needs none",
                )
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .with_retry_after(SESSIONS_RETRY_AFTER);
                Err(Box::new(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    peek.id.clone(),
                    BUSY,
                    problem.to_problem(),
                    None,
                )))
            }
            Err(NoSlot::Key(e)) => {
                let problem = ApiError::from(e);
                Err(Box::new(refusal(
                    StatusCode::TOO_MANY_REQUESTS,
                    peek.id.clone(),
                    BUSY,
                    problem.to_problem(),
                    None,
                )))
            }
        },
        _ => Ok(None),
    }
}

/// A session's `GET` stream lives as long as the client wants; end it when the drain
/// starts so that the listener can close (the client reconnects to another replica).
fn end_on_shutdown(response: Response, state: &AppState) -> Response {
    let (parts, body) = response.into_parts();
    let stream = body
        .into_data_stream()
        .take_until(CancellationToken::clone(&state.shutdown).cancelled_owned());
    Response::from_parts(parts, Body::from_stream(stream))
}
