//! [`ApiError`]: every error the HTTP API returns, turned into an RFC 9457
//! `application/problem+json` response in exactly one place ([`IntoResponse`]).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use toolgate_core::{ErrorKind, FieldError, ToolError};

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error on its way to the client. Its `detail` is client-safe by construction:
/// internal causes are logged where they happen and never put here.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    code: &'static str,
    title: &'static str,
    status: StatusCode,
    detail: String,
    tool: Option<String>,
    errors: Vec<FieldError>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error of the contract's `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            code: kind.code(),
            title: kind.title(),
            status: StatusCode::from_u16(kind.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            detail: detail.into(),
            tool: None,
            errors: Vec::new(),
            retry_after: None,
        }))
    }

    /// A tool's failure, naming the tool.
    #[must_use]
    pub fn from_tool(err: ToolError, tool: &str) -> Self {
        let mut e = Self::from(err);
        e.0.tool = Some(tool.to_owned());
        e
    }

    /// `invalid_arguments` with one located violation.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::InvalidArguments, message.clone()).push_field(pointer, message)
    }

    /// Add one more located violation.
    #[must_use]
    pub fn push_field(mut self, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        self.0.errors.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
        self
    }

    /// Ask the client to wait `after` before trying again (`Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Override the status (server-wide `overloaded` is 503, not 429).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The contract's `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The problem document, with the current request's trace id.
    #[must_use]
    pub fn to_problem(&self) -> Value {
        let this = &self.0;
        let mut body = json!({
            "type": format!("urn:toolgate:problem:{}", this.code),
            "title": this.title,
            "status": this.status.as_u16(),
            "detail": this.detail,
            "code": this.code,
        });
        if let Some(tool) = &this.tool {
            body["tool"] = json!(tool);
        }
        if let Some(trace_id) = crate::trace::current() {
            body["trace_id"] = json!(trace_id);
        }
        if !this.errors.is_empty() {
            body["errors"] = json!(this.errors);
        }
        if let Some(after) = this.retry_after {
            body["retry_after_s"] = json!(retry_after_secs(after));
        }
        body
    }

    /// Route-level errors outside the contract's tool codes.
    pub(crate) fn route(
        code: &'static str,
        title: &'static str,
        status: StatusCode,
        detail: String,
    ) -> Self {
        Self(Box::new(Inner {
            code,
            title,
            status,
            detail,
            tool: None,
            errors: Vec::new(),
            retry_after: None,
        }))
    }
}

/// `Retry-After` in whole seconds, at least 1.
fn retry_after_secs(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0).max(u64::from(after.is_zero()))
}

impl From<ToolError> for ApiError {
    fn from(err: ToolError) -> Self {
        let status = err.status();
        let mut e = Self::new(err.kind, err.message);
        e.0.status = StatusCode::from_u16(status).unwrap_or(e.0.status);
        e.0.errors = err.errors;
        e.0.retry_after = err.retry_after;
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_problem().to_string();
        let mut response = (self.0.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = self.0.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(after)),
            );
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"toolgate\""),
            );
        }
        response
    }
}

/// Fallback for paths that match no route.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::route(
        "not_found",
        "Not found",
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::route(
        "method_not_allowed",
        "Method not allowed",
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here"),
    )
}

/// The answer to a handler panic (caught by the middleware stack): a bug, so the
/// client learns nothing but that, and the panic is logged.
#[must_use]
pub fn internal() -> ApiError {
    ApiError::route(
        "internal_error",
        "Internal error",
        StatusCode::INTERNAL_SERVER_ERROR,
        "an internal error occurred; it has been logged".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
