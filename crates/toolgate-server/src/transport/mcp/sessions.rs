//! 2025-11-25 sessions: rmcp's in-memory session manager with our own ids, each
//! bound to the key that opened it.
//!
//! rmcp names sessions with a v4 UUID (122 random bits); the transport spec asks for a
//! cryptographically secure id, and the issue for at least 128 bits, so every id here
//! is 256 bits from the OS CSPRNG. Everything else (routing messages into the session
//! worker, SSE streams, resumption, idle timeout) is rmcp's `LocalSessionManager`.
//!
//! Sessions are bounded twice: `mcp_max_sessions` in all (of which the operators'
//! reserve only operator keys may take) and `max_mcp_sessions` per key. Both slots
//! are reserved atomically before rmcp creates anything, kept with the session's
//! owner, and given back when the session closes (or when its `initialize` fails).
//! A reload that removes a key closes the sessions it opened.
//!
//! An id alone is not enough to use a session: the guard looks up its [`Owner`] and
//! answers `404 Not Found` to any other key, exactly as for an id that never existed,
//! so a leaked id is worthless without its key and nobody learns that it is live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker, SessionConfig, SessionError,
    create_local_session,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use subtle::ConstantTimeEq;
use toolgate_config::KeyHash;
use toolgate_core::ToolError;
use toolgate_resilience::Shedder;
use toolgate_resilience::shed::Admitted;

use crate::auth::{Keys, Principal};
use crate::quota::{QuotaKind, QuotaSlot};

/// Random bytes in a session id (256 bits).
const ID_BYTES: usize = 32;

/// Who opened a session: the key's name (for logs) and the SHA-256 of the key itself,
/// so that a reload giving another key the same name does not inherit the session.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) name: String,
    pub(crate) digest: [u8; 32],
}

impl Owner {
    /// Whether `other` is the same key (constant time).
    pub(crate) fn same_key(&self, other: &Owner) -> bool {
        self.digest.ct_eq(&other.digest).into()
    }
}

/// The two slots a session holds: one of all sessions, one of its key's.
#[derive(Debug)]
pub(crate) struct SessionSlots {
    _global: Admitted,
    _key: QuotaSlot,
}

/// Why no session slot could be reserved.
pub(crate) enum NoSlot {
    /// All sessions (but the operators' reserve) are taken.
    Global(usize),
    /// The key holds all its own.
    Key(ToolError),
}

/// An open session's owner and the slots it holds.
#[derive(Debug)]
struct Bound {
    owner: Owner,
    _slots: SessionSlots,
}

/// rmcp's local sessions plus who owns each.
#[derive(Debug)]
pub(crate) struct KeyedSessions {
    inner: LocalSessionManager,
    owners: Mutex<HashMap<SessionId, Bound>>,
    global: Shedder,
}

impl KeyedSessions {
    /// Sessions closed after `config.keep_alive` without traffic; at most
    /// `max_sessions`, of which `reserve_percent` are kept for operator keys.
    pub(crate) fn new(config: SessionConfig, max_sessions: usize, reserve_percent: u8) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config = config;
        Self {
            inner,
            owners: Mutex::new(HashMap::new()),
            global: Shedder::with_reserve(max_sessions, reserve_percent),
        }
    }

    /// Reserve the slots of a new session for `caller`, before it is created.
    pub(crate) fn reserve(&self, caller: &Principal) -> Result<SessionSlots, NoSlot> {
        let global = self
            .global
            .try_admit_as(caller.privileged)
            .ok_or_else(|| NoSlot::Global(self.global.in_flight()))?;
        let key = caller
            .take_slot(QuotaKind::McpSessions)
            .map_err(NoSlot::Key)?;
        Ok(SessionSlots {
            _global: global,
            _key: key,
        })
    }

    /// Close every session whose key is no longer accepted (after a reload).
    pub(crate) async fn close_revoked(&self, keys: &Keys) {
        let revoked: Vec<SessionId> = self
            .owners()
            .iter()
            .filter(|(_, b)| keys.find(&KeyHash::from_digest(b.owner.digest)).is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in revoked {
            tracing::info!(session = %id, "MCP session closed: its key was revoked");
            if let Err(e) = self.close_session(&id).await {
                tracing::debug!(error = %e, "closing a revoked MCP session");
            }
        }
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<SessionId, Bound>> {
        // A panic while holding this lock cannot leave the map half-updated (each
        // critical section is one insert, remove or lookup), so poison is ignored.
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record that `owner` opened session `id` (its `initialize` succeeded), holding
    /// `slots` until it closes.
    pub(crate) fn bind(&self, id: &str, owner: Owner, slots: SessionSlots) {
        self.owners().insert(
            Arc::from(id),
            Bound {
                owner,
                _slots: slots,
            },
        );
    }

    /// The owner of session `id`, if it is open.
    pub(crate) fn owner(&self, id: &str) -> Option<Owner> {
        self.owners().get(id).map(|b| b.owner.clone())
    }
}

/// A new session id: 256 bits from the OS CSPRNG, hex (visible ASCII, as the spec
/// requires of `Mcp-Session-Id`).
fn new_id() -> Result<SessionId, LocalSessionManagerError> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        // No randomness, no session: a guessable id would be worse than a refusal.
        tracing::error!(error = %e, "the OS random source failed; refusing to open a session");
        LocalSessionManagerError::SessionError(SessionError::Io(std::io::Error::other(e)))
    })?;
    Ok(Arc::from(hex::encode(bytes)))
}

impl SessionManager for KeyedSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let id = new_id()?;
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        Ok((id, WorkerTransport::spawn(worker)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    /// Called on `DELETE` and when the session's worker ends (idle timeout, server
    /// shutdown): the binding goes with the session.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.owners().remove(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_bit_hex_and_distinct() {
        let a = new_id().unwrap_or_else(|_| Arc::from(""));
        let b = new_id().unwrap_or_else(|_| Arc::from(""));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn owners_compare_by_key_digest_not_name() {
        let a = Owner {
            name: "a".into(),
            digest: [1; 32],
        };
        let renamed = Owner {
            name: "b".into(),
            digest: [1; 32],
        };
        let other = Owner {
            name: "a".into(),
            digest: [2; 32],
        };
        assert!(a.same_key(&renamed));
        assert!(!a.same_key(&other));
    }
}
