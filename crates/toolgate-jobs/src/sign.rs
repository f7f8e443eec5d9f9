//! Webhook signatures: `X-Toolgate-Signature: t=UNIX,v1=HEX`, where HEX is the
//! HMAC-SHA256, under the shared secret, of `UNIX.BODY`. The receiver recomputes
//! it and refuses a timestamp too far from its clock (replays).

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature header's value for `body` sent at `unix` seconds.
#[must_use]
pub fn sign(secret: &[u8], unix: i64, body: &[u8]) -> String {
    format!("t={unix},v1={}", hex::encode(mac(secret, unix, body)))
}

fn mac(secret: &[u8], unix: i64, body: &[u8]) -> Vec<u8> {
    // Any key length is valid for HMAC; the error arm cannot happen.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return Vec::new();
    };
    m.update(unix.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Whether `header` is a valid signature of `body` under `secret`, made within
/// `tolerance_s` seconds of `now_unix` (compared in constant time).
#[must_use]
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_unix: i64, tolerance_s: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_unix - t).abs() > tolerance_s {
        return false;
    }
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.verify_slice(&v1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let s = sign(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(verify(b"secret", &s, b"{\"a\":1}", 1_700_000_010, 300));
        assert!(!verify(b"secret", &s, b"{\"a\":2}", 1_700_000_010, 300));
        assert!(!verify(b"other", &s, b"{\"a\":1}", 1_700_000_010, 300));
        assert!(!verify(b"secret", &s, b"{\"a\":1}", 1_700_001_000, 300));
        assert!(!verify(b"secret", "t=1,v1=zz", b"", 1, 300));
    }
}
