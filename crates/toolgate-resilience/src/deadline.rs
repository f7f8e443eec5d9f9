//! Deadlines: a call gets the tool's maximum, lowered (never raised) by the caller.

use std::time::Duration;

use tokio::time::Instant;

/// The deadline for a call starting at `now`: `max`, lowered by each of `requested`.
#[must_use]
pub fn resolve(now: Instant, max: Duration, requested: &[Option<Duration>]) -> Instant {
    let budget = requested.iter().flatten().fold(max, |acc, r| acc.min(*r));
    now + budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_lower_but_never_raise() {
        let now = Instant::now();
        let max = Duration::from_secs(30);
        assert_eq!(resolve(now, max, &[]), now + max);
        assert_eq!(
            resolve(now, max, &[Some(Duration::from_secs(5)), None]),
            now + Duration::from_secs(5)
        );
        assert_eq!(
            resolve(now, max, &[Some(Duration::from_secs(60))]),
            now + max
        );
        assert_eq!(
            resolve(
                now,
                max,
                &[Some(Duration::from_secs(9)), Some(Duration::from_secs(2))]
            ),
            now + Duration::from_secs(2)
        );
    }
}
