//! `[toolsets.NAME]`: named views of the tools. A request to `/mcp/NAME` or under
//! `/api/v1/sets/NAME/` is served by the ordinary route without the set's part of
//! the path (`/mcp`, `/api/v1/...`), with the caller narrowed to the set: every
//! transport, list and document then shows and calls only the set's tools that the
//! caller may call, with nothing else to keep in step.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use toolgate_config::{LoadedConfig, ScopePattern};

use crate::AppState;
use crate::auth::Toolset;

/// Every configured toolset, by name (replaced whole on reload).
pub type Toolsets = HashMap<String, Arc<Toolset>>;

/// The toolsets of `loaded` (validated: their patterns parse).
#[must_use]
pub fn of(loaded: &LoadedConfig) -> Toolsets {
    loaded
        .config
        .toolsets
        .iter()
        .map(|(name, set)| {
            let patterns = set
                .get_ref()
                .tools
                .iter()
                .filter_map(|p| ScopePattern::parse(p).ok())
                .collect();
            (
                name.clone(),
                Arc::new(Toolset {
                    name: name.clone(),
                    patterns,
                    search: set.get_ref().search,
                }),
            )
        })
        .collect()
}

/// The set a request came through, for the gate to narrow its caller with.
#[derive(Debug, Clone)]
pub struct ActiveSet(pub Arc<Toolset>);

/// The set named by `path` and the path it stands for, if it names one:
/// `/mcp/NAME` → `/mcp`, `/api/v1/sets/NAME/REST` → `/api/v1/REST`.
fn split(path: &str) -> Option<(&str, String)> {
    if let Some(rest) = path.strip_prefix("/mcp/") {
        return (!rest.is_empty() && !rest.contains('/')).then(|| (rest, "/mcp".to_owned()));
    }
    let rest = path.strip_prefix("/api/v1/sets/")?;
    let (name, tail) = rest.split_once('/')?;
    (!name.is_empty() && !tail.is_empty()).then(|| (name, format!("/api/v1/{tail}")))
}

/// Runs before routing: a set's path is rewritten to the route it stands for, with
/// [`ActiveSet`] attached; an unknown set is `404`.
pub async fn route(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some((name, target)) = split(req.uri().path()) else {
        return next.run(req).await;
    };
    let Some(set) = state.toolsets.load().get(name).cloned() else {
        return crate::ApiError::route(
            "not_found",
            "Not found",
            StatusCode::NOT_FOUND,
            format!("there is no toolset named {name:?}"),
        )
        .into_response();
    };
    let with_query = match req.uri().query() {
        Some(q) => format!("{target}?{q}"),
        None => target,
    };
    let Ok(uri) = with_query.parse::<Uri>() else {
        return next.run(req).await;
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(ActiveSet(set));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn set_paths_map_to_their_routes() {
        assert_eq!(split("/mcp/support"), Some(("support", "/mcp".to_owned())));
        assert_eq!(
            split("/api/v1/sets/support/tools/echo"),
            Some(("support", "/api/v1/tools/echo".to_owned()))
        );
        assert_eq!(
            split("/api/v1/sets/support/openapi.json"),
            Some(("support", "/api/v1/openapi.json".to_owned()))
        );
        for plain in [
            "/mcp",
            "/mcp/",
            "/mcp/a/b",
            "/api/v1/tools",
            "/api/v1/sets/x",
            "/api/v1/sets//tools",
        ] {
            assert_eq!(split(plain), None, "{plain}");
        }
    }
}
