//! The daemon: runs the planes and every periodic job of a Mistborn in order, supervises and
//! stops them. Every frontend (the `mistborn` binary, Python, an embedding program) starts the
//! same one. [`ChangeWatcher`] turns other processes' writes into change events.

mod watch;

pub use watch::{ChangeWatcher, SQLITE_POLL};
