//! One socket's loop.
//!
//! The loop waits on five things, in this order of priority: the drain starting,
//! an update from a running call (progress or result, written to the socket), a
//! finished task to reap, the keep-alive tick, and the next client message. It
//! reads the socket only while it can take a call: with `ws_max_in_flight` calls in
//! flight, one more call message is parked and reading stops until a slot frees, so
//! a client that sends faster than its calls finish is slowed down by TCP instead
//! of being buffered. Results wait for the socket (they are never dropped); progress
//! is dropped when the client reads too slowly.
//!
//! A reload that removes the socket's key closes the socket with 1008 (policy
//! violation), cancelling its calls; one that changes the key's scopes applies them to
//! the next call. A client that stops reading is cut off once a write waits longer
//! than two ping intervals (30 s with pings off), and the writer never buffers more
//! than [`super::MAX_WRITE_BUFFER_BYTES`] for it.
//!
//! Every call's token is a child of the socket's, itself a child of `state.calls`:
//! a `cancel` message cancels one call, the socket closing cancels them all (the
//! drop guard fires and the task set aborts), and a drain that runs out of time
//! cancels everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::DropGuard;
use toolgate_core::{CancellationToken, ErrorKind, ToolError};
use toolgate_registry::Invocation;

use super::message::{self, CallRequest, ClientMessage};
use crate::auth::Principal;
use crate::exec::Outcome;
use crate::transport::batch::{BatchCall, entry};
use crate::transport::sse::{UPDATE_QUEUE, Update, spawn_call};
use crate::{ApiError, AppState};

/// How long the server waits for the client's half of a closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long one write may wait for a client that does not read, with pings off.
const WRITE_WAIT_WITHOUT_PINGS: Duration = Duration::from_secs(30);

/// Serve one upgraded socket until it closes; `slot` is the key's socket quota.
pub(super) async fn serve(
    socket: WebSocket,
    state: AppState,
    caller: Arc<Principal>,
    slot: crate::quota::QuotaSlot,
) {
    let (sink, stream) = socket.split();
    let conn = Conn::new(state, caller, sink, slot);
    conn.run(stream).await;
}

/// A call in flight on this socket.
struct InFlight {
    tool: String,
    token: CancellationToken,
    /// The client sent `cancel` for it.
    cancelled: bool,
}

/// Why the loop ended, and so how the socket closes.
enum Stop {
    /// The peer is gone or unresponsive: drop the connection without a word.
    Gone,
    /// The client closed: let tungstenite finish the handshake.
    ClientClosed,
    /// Close with this code; wait for the client's reply unless reading is unsafe.
    Close(u16, &'static str, bool),
}

/// What woke the loop.
enum Step {
    Drain,
    Update(Update<String>),
    Reaped,
    Tick,
    KeysChanged,
    Incoming(Option<Result<Message, axum::Error>>),
}

struct Conn {
    state: AppState,
    caller: Arc<Principal>,
    sink: SplitSink<WebSocket, Message>,
    calls: HashMap<String, InFlight>,
    /// A call read while the socket was full; reading stops while it waits.
    parked: Option<CallRequest>,
    tasks: JoinSet<()>,
    tx: mpsc::Sender<Update<String>>,
    rx: mpsc::Receiver<Update<String>>,
    token: CancellationToken,
    _cancel: DropGuard,
    max_in_flight: usize,
    ping_every: Option<Duration>,
    draining: bool,
    last_seen: Instant,
    /// Changes when the keys are reloaded.
    keys: tokio::sync::watch::Receiver<u64>,
    _slot: crate::quota::QuotaSlot,
}

impl Conn {
    fn new(
        state: AppState,
        caller: Arc<Principal>,
        sink: SplitSink<WebSocket, Message>,
        slot: crate::quota::QuotaSlot,
    ) -> Self {
        let (tx, rx) = mpsc::channel(UPDATE_QUEUE);
        let mut keys = state.keys.subscribe();
        keys.mark_unchanged();
        let token = state.calls.child_token();
        let ping_ms = state.limits.ws_ping_interval_ms;
        Self {
            max_in_flight: state.limits.ws_max_in_flight.max(1),
            ping_every: (ping_ms > 0).then(|| Duration::from_millis(ping_ms)),
            state,
            caller,
            sink,
            calls: HashMap::new(),
            parked: None,
            tasks: JoinSet::new(),
            tx,
            rx,
            _cancel: token.clone().drop_guard(),
            token,
            draining: false,
            last_seen: Instant::now(),
            keys,
            _slot: slot,
        }
    }

    async fn run(mut self, mut stream: SplitStream<WebSocket>) {
        let mut ping = self.ping_every.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let stop = loop {
            let step = self.next_step(&mut stream, &mut ping).await;
            if let Err(stop) = self.handle(step).await {
                break stop;
            }
            if self.draining && self.calls.is_empty() && self.parked.is_none() {
                break Stop::Close(close_code::AWAY, "the server is draining", true);
            }
        };
        self.finish(stop, stream).await;
    }

    async fn next_step(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        ping: &mut Option<Interval>,
    ) -> Step {
        let reading = self.parked.is_none();
        tokio::select! {
            biased;
            () = self.state.shutdown.cancelled(), if !self.draining => Step::Drain,
            Some(update) = self.rx.recv() => Step::Update(update),
            Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => Step::Reaped,
            () = tick(ping) => Step::Tick,
            Ok(()) = self.keys.changed() => Step::KeysChanged,
            incoming = stream.next(), if reading => Step::Incoming(incoming),
        }
    }

    async fn handle(&mut self, step: Step) -> Result<(), Stop> {
        match step {
            // Calls in flight may finish (run_call refuses new ones); the socket
            // closes with 1001 once none is left.
            Step::Drain => self.draining = true,
            Step::Update(Update::Progress(id, p)) => {
                if let Some(call) = self.calls.get(&id) {
                    let msg = message::progress(&id, &call.tool, &p);
                    self.write(Message::Text(msg.into())).await?;
                }
            }
            Step::Update(Update::Settled(id, outcome)) => self.settled(id, *outcome).await?,
            Step::Reaped => {}
            Step::Tick => self.keep_alive().await?,
            Step::KeysChanged => self.recheck_key()?,
            Step::Incoming(None) => return Err(Stop::Gone),
            Step::Incoming(Some(Err(e))) => return Err(self.read_failed(&e).await),
            Step::Incoming(Some(Ok(msg))) => {
                self.last_seen = Instant::now();
                match msg {
                    Message::Text(text) => self.on_message(text.as_bytes()).await?,
                    Message::Binary(bytes) => self.on_message(&bytes).await?,
                    Message::Close(_) => return Err(Stop::ClientClosed),
                    // tungstenite answers pings itself; any frame proves liveness.
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
        Ok(())
    }

    async fn on_message(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        match message::parse(bytes, self.state.limits.json_max_depth) {
            Err(refused) => {
                let msg = message::error(refused.id.as_deref(), &refused.error);
                self.send(&msg).await
            }
            Ok(ClientMessage::Cancel(id)) => {
                // A cancel for a call that already ended (or never was) is moot: its
                // result went out, or there is nothing to stop.
                if let Some(call) = self.calls.get_mut(&id) {
                    call.cancelled = true;
                    call.token.cancel();
                }
                Ok(())
            }
            Ok(ClientMessage::Call(call)) if self.calls.contains_key(&call.id) => {
                let error = ApiError::invalid(
                    "/id",
                    format!("a call with id {:?} is already in flight", call.id),
                );
                self.send(&message::error(Some(&call.id), &error)).await
            }
            Ok(ClientMessage::Call(call)) if self.calls.len() >= self.max_in_flight => {
                self.parked = Some(call);
                Ok(())
            }
            Ok(ClientMessage::Call(call)) => {
                self.start(call);
                Ok(())
            }
        }
    }

    fn start(&mut self, call: CallRequest) {
        let token = self.token.child_token();
        let inv = Invocation {
            client: None,
            caller: None,
            timeouts: vec![call.timeout],
            cancel: token.clone(),
            trace_id: crate::trace::current(),
            transport: toolgate_registry::Transport::WebSocket,
            ..Invocation::default()
        };
        let work = (call.id.clone(), call.tool.clone(), call.arguments);
        spawn_call(
            &mut self.tasks,
            &self.state,
            &self.caller,
            work,
            inv,
            self.tx.clone(),
        );
        let in_flight = InFlight {
            tool: call.tool,
            token,
            cancelled: false,
        };
        self.calls.insert(call.id, in_flight);
    }

    /// A call ended: write its result, then admit the parked call, if any.
    async fn settled(&mut self, id: String, outcome: Option<Outcome>) -> Result<(), Stop> {
        let Some(call) = self.calls.remove(&id) else {
            return Ok(());
        };
        let outcome = outcome.map(|mut o| {
            if call.cancelled
                && let Err(e) = &mut o.result
                && e.kind == ErrorKind::Cancelled
            {
                e.message = "cancelled by the client's `cancel` message".to_owned();
            }
            o
        });
        let call = BatchCall {
            id,
            tool: call.tool,
            arguments: Value::Null,
        };
        let mut text = message::result(entry(&call, outcome, None)).to_string();
        if text.len() > super::MAX_WRITE_BUFFER_BYTES {
            // It could never be buffered: say so instead.
            crate::transport::count_capped("websocket_message");
            let error = ToolError::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the result is {} bytes, more than a WebSocket message may carry ({} bytes)",
                    text.len(),
                    super::MAX_WRITE_BUFFER_BYTES
                ),
            );
            let outcome = Outcome {
                result: Err(error),
                duration: Duration::ZERO,
            };
            text = message::result(entry(&call, Some(outcome), None)).to_string();
        }
        self.write(Message::Text(text.into())).await?;
        if let Some(parked) = self.parked.take() {
            self.start(parked);
        }
        Ok(())
    }

    /// The keys were reloaded: take the key's new principal, or close if it is gone.
    fn recheck_key(&mut self) -> Result<(), Stop> {
        match self.state.keys.find(&self.caller.hash) {
            // A socket opened through a toolset stays narrowed to the set as reloaded.
            Some(principal) => match &self.caller.set {
                None => {
                    self.caller = principal;
                    Ok(())
                }
                Some(old) => match self.state.toolsets.load().get(&old.name) {
                    Some(set) => {
                        self.caller = Arc::new(principal.in_set(Arc::clone(set)));
                        Ok(())
                    }
                    None => {
                        tracing::info!(key = %self.caller.name, set = %old.name, "websocket closed: its toolset was removed");
                        self.token.cancel();
                        Err(Stop::Close(
                            close_code::POLICY,
                            "the toolset was removed",
                            false,
                        ))
                    }
                },
            },
            None => {
                tracing::info!(key = %self.caller.name, calls = self.calls.len(), "websocket closed: its key was revoked");
                self.token.cancel();
                Err(Stop::Close(
                    close_code::POLICY,
                    "the API key was revoked",
                    false,
                ))
            }
        }
    }

    async fn keep_alive(&mut self) -> Result<(), Stop> {
        let Some(every) = self.ping_every else {
            return Ok(());
        };
        if self.parked.is_some() {
            // Not reading, so pongs go unseen; the client is busy, not gone.
            self.last_seen = Instant::now();
            return Ok(());
        }
        if self.last_seen.elapsed() > every.saturating_mul(2) {
            tracing::debug!("websocket peer silent for two ping intervals; dropping it");
            return Err(Stop::Gone);
        }
        self.write(Message::Ping(axum::body::Bytes::new())).await
    }

    /// A read failed. An oversize message leaves the reader mid-frame, so the socket
    /// is told why and closed with 1009 without reading further.
    async fn read_failed(&mut self, e: &axum::Error) -> Stop {
        if too_long(e) {
            let limit = self.state.limits.ws_max_message_bytes;
            let error = ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("the message is larger than the limit of {limit} bytes"),
            );
            // Best effort: the close below says the same if this cannot be written.
            let _ = self.send(&message::error(None, &error)).await;
            return Stop::Close(close_code::SIZE, "message too big", false);
        }
        tracing::debug!(error = %e, "websocket read failed");
        Stop::Gone
    }

    async fn send(&mut self, msg: &Value) -> Result<(), Stop> {
        self.write(Message::Text(msg.to_string().into())).await
    }

    /// Write one frame. A client that reads nothing for two ping intervals while the
    /// server has something to say is treated as gone.
    async fn write(&mut self, msg: Message) -> Result<(), Stop> {
        let wait = self
            .ping_every
            .map_or(WRITE_WAIT_WITHOUT_PINGS, |every| every.saturating_mul(2));
        match tokio::time::timeout(wait, self.sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "websocket write failed");
                Err(Stop::Gone)
            }
            Err(_) => {
                tracing::info!(
                    key = %self.caller.name,
                    waited_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "websocket closed: the client does not read what it is sent"
                );
                Err(Stop::Gone)
            }
        }
    }

    async fn finish(mut self, stop: Stop, mut stream: SplitStream<WebSocket>) {
        let await_reply = match stop {
            Stop::Gone => return,
            Stop::ClientClosed => true,
            Stop::Close(code, reason, await_reply) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                if self.write(Message::Close(Some(frame))).await.is_err() {
                    return;
                }
                await_reply
            }
        };
        if await_reply {
            // Reading flushes tungstenite's reply to a client's close, and takes the
            // client's reply to ours; the stream ends when the handshake is done.
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
        }
    }
}

/// The next keep-alive tick, or never when pings are off.
async fn tick(ping: &mut Option<Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether a read failed because a message or frame was over the limit.
fn too_long(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<WsError>())
        .is_some_and(|e| matches!(e, WsError::Capacity(_)))
}
