//! Durations and times as the report and the records write them: whole milliseconds that
//! saturate instead of wrapping, and RFC 3339 timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds of a duration, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The last instant RFC 3339 can write (9999-12-31T23:59:59.999Z), in milliseconds since the
/// Unix epoch.
const LAST_WRITABLE_MS: u64 = 253_402_300_799_999;

/// RFC 3339 with milliseconds. A time RFC 3339 cannot write (before 1970 or after 9999, as a
/// corrupt stop record may hold) is written as the nearest one it can, never a panic.
pub fn timestamp(time: SystemTime) -> String {
    let time = if epoch_ms(time) > LAST_WRITABLE_MS {
        from_epoch_ms(LAST_WRITABLE_MS)
    } else {
        time.max(UNIX_EPOCH)
    };
    humantime::format_rfc3339_millis(time).to_string()
}

/// Milliseconds since the Unix epoch of `time` (0 before it), saturating.
pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    epoch_ms(SystemTime::now())
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_epoch_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_rfc_3339_cannot_write_is_written_as_the_nearest_it_can() {
        assert_eq!(timestamp(from_epoch_ms(1_500)), "1970-01-01T00:00:01.500Z");
        assert_eq!(
            timestamp(from_epoch_ms(LAST_WRITABLE_MS)),
            "9999-12-31T23:59:59.999Z"
        );
        // What a corrupt stop record may say (humantime refuses both, and `to_string` panicked).
        assert_eq!(
            timestamp(from_epoch_ms(u64::MAX)),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
