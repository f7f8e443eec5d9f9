//! `[jobs]` and the tools' `job_timeout_ms` and `approval`.

use super::{Checker, field_span};
use crate::model::Config;

/// Seven days: the longest a job may run.
const MAX_JOB_MS: u64 = 7 * 86_400_000;

pub(super) fn check_jobs(c: &mut Checker<'_>, cfg: &Config) {
    let jobs = cfg.jobs.as_ref().map(|j| (j.span(), j.get_ref()));
    if let Some((span, j)) = jobs {
        if j.path.is_some() && j.url.is_some() {
            c.report(
                span.clone(),
                "[jobs] takes `path` (SQLite) or `url` (PostgreSQL), not both",
            );
        }
        if !super::is_identifier(&j.table) {
            c.report(
                span.clone(),
                format!("[jobs] table {:?} must be an identifier", j.table),
            );
        }
        for (value, field, range) in [
            (j.workers as u64, "workers", 1..=10_000),
            (j.lease_ms, "lease_ms", 1000..=600_000),
            (j.poll_ms, "poll_ms", 10..=60_000),
            (j.result_ttl_ms, "result_ttl_ms", 1000..=2_592_000_000),
            (j.max_per_key, "max_per_key", 1..=1_000_000),
            (j.default_timeout_ms, "default_timeout_ms", 1..=MAX_JOB_MS),
            (u64::from(j.webhook_attempts), "webhook_attempts", 1..=20),
        ] {
            if !range.contains(&value) {
                let at = field_span(c, "jobs", field);
                c.report(
                    if at.is_empty() { span.clone() } else { at },
                    format!("[jobs] {field} must be {}..={}", range.start(), range.end()),
                );
            }
        }
        if let Some(var) = &j.webhook_secret_env
            && (var.is_empty()
                || !var
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        {
            c.report(
                field_span(c, "jobs", "webhook_secret_env"),
                "[jobs] webhook_secret_env must name an environment variable",
            );
        }
        for net in &j.webhook_allow_private {
            if net.parse::<std::net::IpAddr>().is_err() && !is_cidr(net) {
                c.report(
                    field_span(c, "jobs", "webhook_allow_private"),
                    format!(
                        "[jobs] webhook_allow_private: {net:?} is not a network (CIDR) or address"
                    ),
                );
            }
        }
        if let Some(url) = &j.approval_webhook
            && !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://"))
        {
            c.report(url.span(), "[jobs] approval_webhook must be an http(s) URL");
        }
    }
    for t in &cfg.tools {
        if let Some(ms) = &t.job_timeout_ms {
            let tool_timeout = t.timeout_ms.as_ref().map_or(0, |v| *v.get_ref());
            if *ms.get_ref() == 0 || *ms.get_ref() > MAX_JOB_MS {
                c.report(ms.span(), "job_timeout_ms must be 1..=604800000 (7 days)");
            } else if *ms.get_ref() < tool_timeout {
                c.report(
                    ms.span(),
                    format!("job_timeout_ms ({}) must be at least the tool's timeout_ms ({tool_timeout})", ms.get_ref()),
                );
            }
        }
        if let (Some(_), Some(ts)) = (&t.approval, &t.task_support)
            && *ts.get_ref() != crate::jobs::TaskSupport::Required
        {
            c.report(
                ts.span(),
                format!(
                    "tool {:?}: a tool with an approval runs only as a job or task; task_support must be \"required\" (or left out)",
                    t.name.get_ref()
                ),
            );
        }
        if let Some(a) = &t.approval {
            let v = a.get_ref();
            if v.approvers.is_empty() {
                c.report(
                    a.span(),
                    format!(
                        "tool {:?}: approval needs at least one approver",
                        t.name.get_ref()
                    ),
                );
            }
            for p in &v.approvers {
                let ok = match p
                    .strip_prefix("key:")
                    .or_else(|| p.strip_prefix("subject:"))
                {
                    Some(rest) => !rest.is_empty(),
                    None => crate::ScopePattern::parse(p).is_ok(),
                };
                if !ok {
                    c.report(
                        a.span(),
                        format!("tool {:?}: approver {p:?} is not a scope pattern, `key:NAME` or `subject:SUB`", t.name.get_ref()),
                    );
                }
            }
            if !(1000..=2_592_000_000).contains(&v.timeout_ms) {
                c.report(
                    a.span(),
                    format!(
                        "tool {:?}: approval timeout_ms must be 1000..=2592000000 (30 days)",
                        t.name.get_ref()
                    ),
                );
            }
        }
    }
}

fn is_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, len)| {
        let Ok(len) = len.parse::<u8>() else {
            return false;
        };
        match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => len <= 32,
            Ok(std::net::IpAddr::V6(_)) => len <= 128,
            Err(_) => false,
        }
    })
}
