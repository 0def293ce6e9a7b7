//! Runtime log files: hourly files in a directory, deleted once older than the runtime-log retention (1 day by
//! default). Without a configured directory, logs go to stdout and this module is unused.
//!
//! Writing and hourly rotation are `tracing-appender`'s. Deleting is ours: the appender's `max_log_files` keeps a
//! number of files, not an age, so after a stop of a few days it would keep files far older than the retention
//! (and a retention that is not a whole number of hours has no file count). [`prune`] deletes by the hour each
//! file covers, whatever ran or did not run in between.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::path::Path;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

const PREFIX: &str = "fctr.";
const SUFFIX: &str = ".log";

/// An hourly rolling appender writing `fctr.YYYY-MM-DD-HH.log` files into `dir`.
///
/// # Errors
/// When the directory cannot be created or written.
pub fn appender(dir: &Path) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("log directory {}: {e}", dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::HOURLY)
        .filename_prefix("fctr")
        .filename_suffix("log")
        .build(dir)
        .map_err(|e| format!("log directory {}: {e}", dir.display()))
}

/// The start of the hour a log file name covers, if it is one of ours.
fn hour_of(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDateTime::parse_from_str(&format!("{stamp}:00"), "%Y-%m-%d-%H:%M")
        .ok()
        .map(|t| t.and_utc())
}

/// Deletes our log files whose hour ended more than `keep` before `now`. Other files are left alone.
///
/// # Errors
/// When the directory cannot be read; files that cannot be deleted are skipped.
pub fn prune(dir: &Path, now: DateTime<Utc>, keep: chrono::Duration) -> std::io::Result<usize> {
    let cutoff = now - keep;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(start) = name.to_str().and_then(hour_of) else {
            continue;
        };
        if start + chrono::Duration::hours(1) <= cutoff
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keeps_one_day_of_hourly_files_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 30, 0).unwrap();
        for h in 0..30 {
            let t = now - chrono::Duration::hours(h);
            std::fs::write(
                dir.path()
                    .join(format!("fctr.{}.log", t.format("%Y-%m-%d-%H"))),
                b"{}",
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        let removed = prune(dir.path(), now, chrono::Duration::days(1)).unwrap();
        // Hours ending at or before 12:30 the day before: 11:00-12:00 ... back 29 hours.
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(left.contains(&"notes.txt".to_owned()));
        assert!(
            left.contains(&"fctr.2026-11-28-12.log".to_owned()),
            "the hour still inside the day is kept"
        );
        assert!(
            !left.contains(&"fctr.2026-11-28-11.log".to_owned()),
            "an hour that ended a day ago is gone"
        );
        assert_eq!(removed, 30 - 25, "{left:?}");
    }

    #[test]
    fn names_parse_strictly() {
        assert!(hour_of("fctr.2026-11-29-06.log").is_some());
        assert!(hour_of("fctr.2026-11-29.log").is_none());
        assert!(hour_of("other.2026-11-29-06.log").is_none());
        assert!(hour_of("fctr.2026-11-29-06.log.gz").is_none());
    }
}
