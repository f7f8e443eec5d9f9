//! [`SecondStamp`]: the date and time of day of a unix second, formatted once per
//! second. Log lines and audit records are stamped thousands of times a second;
//! formatting the calendar part for each one showed in profiles, and no formatting
//! crate caches across calls, so the cache is written here.

use time::OffsetDateTime;

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for the last second asked for.
#[derive(Debug, Default, Clone)]
pub struct SecondStamp {
    second: u64,
    text: String,
}

impl SecondStamp {
    /// The text for unix second `secs` (reformatted only when the second changes);
    /// a second outside the calendar's range is written as the epoch.
    pub fn get(&mut self, secs: u64) -> &str {
        if secs != self.second || self.text.is_empty() {
            let t = i64::try_from(secs)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            self.text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            self.second = secs;
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::SecondStamp;

    #[test]
    fn formats_the_calendar_second_and_follows_changes() {
        let mut s = SecondStamp::default();
        assert_eq!(s.get(0), "1970-01-01T00:00:00");
        assert_eq!(s.get(1_795_681_800), "2026-11-26T08:30:00");
        assert_eq!(s.get(1_795_681_800), "2026-11-26T08:30:00");
        assert_eq!(s.get(1_795_681_861), "2026-11-26T08:31:01");
        assert_eq!(s.get(951_782_400), "2000-02-29T00:00:00");
    }
}
