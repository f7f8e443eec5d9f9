//! The upstream's own access token: an OAuth 2.1 client-credentials grant (RFC 6749
//! section 4.4), made before each connection and again before the token expires.

use std::time::Duration;

use serde::Deserialize;

use crate::settings::OAuth;

/// A token and how long it lives.
#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) access_token: String,
    pub(crate) expires_in: Option<Duration>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
}

/// Ask `o.token_url` for a token.
pub(crate) async fn fetch(o: &OAuth, timeout: Duration) -> Result<Token, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("token client: {e}"))?;
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(s) = &o.scope {
        form.push(("scope", s));
    }
    if let Some(r) = &o.resource {
        form.push(("resource", r));
    }
    let resp = client
        .post(&o.token_url)
        .basic_auth(&o.client_id, Some(&o.client_secret))
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("token request to {}: {e}", o.token_url))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("token response: {e}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("the token endpoint answered {status}: {text}"));
    }
    let t: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| format!("token response: {e}"))?;
    if !t.token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!("token_type {:?} is not Bearer", t.token_type));
    }
    Ok(Token {
        access_token: t.access_token,
        expires_in: t.expires_in.map(Duration::from_secs),
    })
}
