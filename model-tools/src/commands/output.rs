//! What every subcommand shares on the way out: exit codes and failures, results on stdout
//! (quiet on a closed pipe), progress bars, and report files.

use std::io::Write as _;

use indicatif::{ProgressBar, ProgressStyle};

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub fn fail(code: u8) -> impl Fn(&dyn std::fmt::Display) -> Failure {
    move |e| Failure {
        code,
        message: e.to_string(),
    }
}

pub const CHECK_FAILED: u8 = 1;
pub const BAD_INPUT: u8 = 3;
pub const STEP_FAILED: u8 = 4;

/// Writes `text` and a newline to standard output; every result goes through here, never
/// `println!` (which panics when the reader has gone).
///
/// When the reader has gone (a closed pipe: `model-tools … | head`), the rest of the output is
/// dropped quietly and the command still ends with its own exit code: the work is done by the
/// time its report is printed, and a failed check must still fail.
pub fn print_line(text: &dyn std::fmt::Display) -> Result<(), Failure> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    match writeln!(std::io::stdout().lock(), "{text}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(fail(STEP_FAILED)(&format_args!(
            "writing to standard output: {e}"
        ))),
    }
}

pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| fail(STEP_FAILED)(&e))?;
    print_line(&text)
}

/// Prints a report for people, or as JSON with `--json`.
pub fn emit(
    report: &(impl serde::Serialize + std::fmt::Display),
    json: bool,
) -> Result<(), Failure> {
    if json {
        print_json(report)
    } else {
        print_line(report)
    }
}

/// Moves a bar to `done` of `total`.
pub fn tick(bar: &ProgressBar, done: usize, total: usize) {
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

pub fn bar(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A line above the progress bar, or on stderr when there is no terminal to draw one on.
pub fn say(progress: &ProgressBar, line: String) {
    if progress.is_hidden() {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        progress.println(line);
    }
}

pub fn write_report(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    model_tools::hf::write_atomically(path, |w| w.write_all(bytes))
        .map_err(|e| fail(STEP_FAILED)(&e))
}
