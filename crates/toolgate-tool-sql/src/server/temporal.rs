//! Dates and times as RFC 3339 text: `full-date`, `partial-time`, and `date-time`
//! with `Z` for values the database holds as instants. A timestamp without a time
//! zone gets no offset: inventing one would be a lie. Fractions keep the digits the
//! database has (microseconds), without trailing zeros.

use std::fmt::Write as _;

use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `YYYY-MM-DD`.
pub(super) fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `HH:MM:SS[.fraction]`; `hours` may pass 23 (MySQL's `TIME` is a duration).
pub(super) fn clock(hours: u32, minutes: u8, seconds: u8, nanos: u32) -> String {
    let mut out = format!("{hours:02}:{minutes:02}:{seconds:02}");
    if nanos > 0 {
        let digits = format!("{nanos:09}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    out
}

/// `HH:MM:SS[.fraction]`.
pub(super) fn time_of_day(t: Time) -> String {
    clock(u32::from(t.hour()), t.minute(), t.second(), t.nanosecond())
}

/// `Z`, or `+HH:MM` (`+HH:MM:SS` for the rare offsets with seconds).
pub(super) fn offset(o: UtcOffset) -> String {
    if o.is_utc() {
        return "Z".to_owned();
    }
    let sign = if o.is_negative() { '-' } else { '+' };
    let (h, m, s) = o.as_hms();
    let mut out = format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs());
    if s != 0 {
        let _ = write!(out, ":{:02}", s.unsigned_abs());
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]`, no offset.
pub(super) fn local(dt: PrimitiveDateTime) -> String {
    format!("{}T{}", date(dt.date()), time_of_day(dt.time()))
}

/// An instant, in UTC: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub(super) fn instant(dt: OffsetDateTime) -> String {
    let utc = dt.to_offset(UtcOffset::UTC);
    format!("{}Z", local(PrimitiveDateTime::new(utc.date(), utc.time())))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, offset, time};

    use super::*;

    #[test]
    fn values_are_rfc_3339() {
        assert_eq!(date(date!(2026 - 01 - 05)), "2026-01-05");
        assert_eq!(time_of_day(time!(7:08:09)), "07:08:09");
        assert_eq!(time_of_day(time!(7:08:09.120)), "07:08:09.12");
        assert_eq!(
            local(datetime!(2026-01-05 07:08:09.000001)),
            "2026-01-05T07:08:09.000001"
        );
        assert_eq!(
            instant(datetime!(2026-01-05 07:08:09 +02:00)),
            "2026-01-05T05:08:09Z"
        );
        assert_eq!(offset(offset!(-03:30)), "-03:30");
        assert_eq!(offset(offset!(UTC)), "Z");
        assert_eq!(clock(838, 59, 59, 0), "838:59:59");
    }
}
