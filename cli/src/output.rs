//! Standard output that behaves in a pipe (`vazhi kb search the | head -1`).
//!
//! Every command writes through [`stdout`] (or [`outln!`]), never `println!`, which panics when
//! the reader has gone. A write to a closed pipe fails with an error marked as [`Closed`]; it
//! travels up like any other error, so destructors run (a scratch directory is removed, a
//! database closed), and `main` then ends quietly with exit code 0, as ripgrep does. Notes
//! for people go to standard error through [`errln!`], which never panics either.

use std::io::{self, Write};

/// Writes one line to standard output, like `println!`, but returns the `io::Result` instead
/// of panicking: `outln!("{n} records")?`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!($crate::output::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Writes one line to standard error, like `eprintln!`, but never panics: with stderr gone
/// (`vazhi … 2>&1 | head`) there is nowhere left to say anything.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use errln;

/// The reader of standard output has gone (a closed pipe): nothing more can be shown.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct Closed;

/// Standard output (locked) whose broken-pipe errors are marked as [`Closed`].
pub struct Stdout(io::StdoutLock<'static>);

/// Standard output for a command's results.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

/// Marks a broken pipe as [`Closed`]; other errors pass unchanged.
fn mark(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, Closed)
    } else {
        err
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(mark)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

/// Whether `err` is (or was caused by) a write to standard output after its reader had gone.
///
/// Only writes through [`Stdout`] count: a broken pipe elsewhere (a socket, a child process)
/// is a real failure.
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<Closed>()
            || cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
                .is_some_and(|inner| inner.is::<Closed>())
    })
}

/// `result`, with a closed standard output counted as success: for a last line whose command
/// has its own exit code to return.
pub fn unless_closed(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.get_ref().is_some_and(|inner| inner.is::<Closed>()) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_broken_pipes_count_as_closed() {
        let closed = anyhow::Error::from(mark(io::ErrorKind::BrokenPipe.into()));
        assert!(is_closed(&closed));
        assert!(is_closed(&closed.context("printing results")));
        let socket = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed(&socket));
        let full = anyhow::Error::from(mark(io::ErrorKind::StorageFull.into()));
        assert!(!is_closed(&full));
        assert!(unless_closed(Err(mark(io::ErrorKind::BrokenPipe.into()))).is_ok());
        assert!(unless_closed(Err(io::ErrorKind::BrokenPipe.into())).is_err());
    }
}
