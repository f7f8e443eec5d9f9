//! Upstreams shared across registries: a reload builds a new registry while the old
//! one still serves, and an upstream whose settings did not change must keep its
//! connection (and its child process) rather than start a second one. The pool holds
//! weak handles, so an upstream no registry uses any more stops.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::watch;

use crate::settings::UpstreamSettings;
use crate::upstream::Upstream;

static POOL: LazyLock<Mutex<HashMap<UpstreamSettings, Weak<Upstream>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

static CHANGES: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// The upstream of `settings`: the running one, or a new one started now.
///
/// # Errors
/// There is no tokio runtime to run a new one on.
pub fn upstream(settings: &UpstreamSettings) -> Result<Arc<Upstream>, String> {
    let mut pool = POOL
        .lock()
        .map_err(|_| "the upstream pool is poisoned".to_owned())?;
    pool.retain(|_, w| w.strong_count() > 0);
    if let Some(u) = pool.get(settings).and_then(Weak::upgrade) {
        return Ok(u);
    }
    let u = Upstream::start(settings.clone())?;
    pool.insert(settings.clone(), Arc::downgrade(&u));
    Ok(u)
}

/// Watch upstream listings: the value changes whenever an upstream lists tools that
/// differ from its previous listing.
#[must_use]
pub fn changes() -> watch::Receiver<u64> {
    CHANGES.subscribe()
}

pub(crate) fn bump() {
    CHANGES.send_modify(|v| *v += 1);
}
