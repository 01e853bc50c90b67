//! `tracing` events to a foreign [`LogSink`]. Vazhi logs no user text above `trace`; apps should
//! keep `trace` off in release builds.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::error::VazhiError;

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Everything, including user text. Never in release builds.
    Trace,
    /// Diagnostics.
    Debug,
    /// Milestones (model loaded, download finished).
    Info,
    /// Something went wrong but Vazhi carried on.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    fn from_tracing(level: &Level) -> Self {
        match *level {
            Level::TRACE => Self::Trace,
            Level::DEBUG => Self::Debug,
            Level::INFO => Self::Info,
            Level::WARN => Self::Warn,
            _ => Self::Error,
        }
    }
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that logged it (e.g. `vazhi_core::download::fetch`).
    pub target: String,
    /// The message and its fields (`key=value`).
    pub message: String,
}

/// Receives Vazhi's log events (from any thread). (Not `Logger`: that would clash with
/// `os.Logger` in Swift files that import both.)
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One event. (Returns `Result` so that an exception thrown by the app's logger arrives as
    /// an error, which is ignored, not as a panic.)
    fn log(&self, record: LogRecord) -> Result<(), VazhiError>;
}

static LOGGER: OnceLock<RwLock<Option<Arc<dyn LogSink>>>> = OnceLock::new();
static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

fn slot() -> &'static RwLock<Option<Arc<dyn LogSink>>> {
    LOGGER.get_or_init(|| RwLock::new(None))
}

/// Sends Vazhi's log events at `max_level` and above to `logger` (replacing an earlier one).
/// The first call installs Vazhi's `tracing` subscriber for the process; if the app already
/// installed another, this fails and nothing changes.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn LogSink>, max_level: LogLevel) -> Result<(), VazhiError> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(ForeignLayer);
        tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
    });
    if let Err(e) = installed {
        return Err(VazhiError::Internal {
            detail: format!("a tracing subscriber is already installed: {e}"),
        });
    }
    MAX_LEVEL.store(max_level as u8, Ordering::SeqCst);
    *slot()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(logger);
    Ok(())
}

struct ForeignLayer;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for ForeignLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = LogLevel::from_tracing(event.metadata().level());
        if (level as u8) < MAX_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let Some(logger) = slot()
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        let record = LogRecord {
            level,
            target: event.metadata().target().to_owned(),
            message: message.0.trim().to_owned(),
        };
        // A logger that throws must not take the logging thread down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| logger.log(record)));
    }
}
