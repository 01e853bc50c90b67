//! [`Emit`]: where a streaming call sends its events. A Dart `StreamSink` in the app; a channel
//! in the Rust tests, so that stream order, cancellation and errors are tested without Dart.

use crate::api::error::VazhiException;
use crate::frb_generated::{SseEncode, StreamSink};

/// A destination for one call's events. The last event is followed by nothing; an error
/// ends the stream (dropping the emitter closes it).
pub trait Emit<T>: Send + Sync + 'static {
    /// Sends one event; `false` when the listener is gone (the Dart stream was closed).
    fn emit(&self, event: T) -> bool;
    /// Ends the stream with an error (thrown by Dart's `await for`).
    fn fail(&self, error: VazhiException);
}

impl<T: SseEncode + Send + Sync + 'static> Emit<T> for StreamSink<T> {
    fn emit(&self, event: T) -> bool {
        self.add(event).is_ok()
    }

    fn fail(&self, error: VazhiException) {
        // Nothing to do if Dart is gone: the stream has no listener left.
        let _ = self.add_error(error);
    }
}

impl<T: Send + 'static> Emit<T> for std::sync::mpsc::Sender<Result<T, VazhiException>> {
    fn emit(&self, event: T) -> bool {
        self.send(Ok(event)).is_ok()
    }

    fn fail(&self, error: VazhiException) {
        let _ = self.send(Err(error));
    }
}
