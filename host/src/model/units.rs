//! Durations and times as the report and the records write them: whole milliseconds that
//! saturate instead of wrapping, and RFC 3339 timestamps.

/// Milliseconds of a duration, saturating.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// RFC 3339 with milliseconds.
pub fn timestamp(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
