//! Terminal helpers: large digits, the spinner, reading a code without echo, small formatting helpers.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

/// Writes to standard output. A closed pipe (`fctr audit export | head`) ends the process quietly with exit 0
/// instead of panicking as `println!` does; other write errors are ignored like `print!` would report them.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let r = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::term::write_out(format_args!(""), true) };
    ($($t:tt)*) => { $crate::term::write_out(format_args!($($t)*), true) };
}
/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($t:tt)*) => { $crate::term::write_out(format_args!($($t)*), false) };
}
pub(crate) use {out, outln};

/// Whether standard output is a terminal (a person is reading).
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Five-row glyphs for 0-9.
const GLYPHS: [[&str; 5]; 10] = [
    [" ### ", "#   #", "#   #", "#   #", " ### "],
    ["  #  ", " ##  ", "  #  ", "  #  ", " ### "],
    [" ### ", "    #", " ### ", "#    ", "#####"],
    ["#### ", "    #", " ### ", "    #", "#### "],
    ["#   #", "#   #", "#####", "    #", "    #"],
    ["#####", "#    ", "#### ", "    #", "#### "],
    [" ### ", "#    ", "#### ", "#   #", " ### "],
    ["#####", "    #", "   # ", "  #  ", "  #  "],
    [" ### ", "#   #", " ### ", "#   #", " ### "],
    [" ### ", "#   #", " ####", "    #", " ### "],
];

/// A number drawn in large type, five lines.
pub(crate) fn big_number(n: u16) -> String {
    let digits: Vec<usize> = n
        .to_string()
        .chars()
        .filter_map(|c| c.to_digit(10))
        .filter_map(|d| usize::try_from(d).ok())
        .collect();
    let mut out = String::new();
    for row in 0..5 {
        out.push_str("    ");
        let line: Vec<&str> = digits
            .iter()
            .filter_map(|d| GLYPHS.get(*d).and_then(|g| g.get(row)).copied())
            .collect();
        out.push_str(&line.join("  "));
        out.push('\n');
    }
    out
}

/// A spinner with the elapsed time, drawn on stderr; hidden when stdout is not a terminal.
pub(crate) fn spinner(message: &str) -> ProgressBar {
    if !stdout_is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(message.to_owned());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Reads one code: without echo from the terminal, or one line from standard input when it is not a terminal.
/// `None` at end of input.
pub(crate) fn read_code(prompt: &str) -> std::io::Result<Option<String>> {
    if std::io::stdin().is_terminal() {
        let s = rpassword::prompt_password(prompt)?;
        return Ok(Some(s.trim().to_owned()));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    eprintln!();
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_owned()))
}

/// A CSV field, quoted when needed.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// An optional time as RFC 3339 (seconds), or `-`.
pub(crate) fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_number_has_five_rows_and_one_glyph_per_digit() {
        let s = big_number(47);
        assert_eq!(s.lines().count(), 5);
        assert!(
            s.lines()
                .next()
                .unwrap_or_default()
                .contains("#   #  #####")
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("abc"), "abc");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
