//! The `Progress` seam through which a fetch reports its phases, and `NoProgress`, which ignores them.

/// Receives the phases of a fetch: download (no byte count: the registry clients give none),
/// then hashing and extraction (byte counts).
///
/// The library never prints; a binary implements this with a progress bar.
pub trait Progress {
    /// A phase starts; `total_bytes` is `None` when the size is unknown (show a spinner).
    fn start(&mut self, what: &str, total_bytes: Option<u64>);
    /// `bytes` more bytes of the current phase are done.
    fn advance(&mut self, bytes: u64);
    /// The current phase ends with a one-line summary.
    fn finish(&mut self, msg: &str);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _what: &str, _total_bytes: Option<u64>) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self, _msg: &str) {}
}
