//! Reloads: SIGHUP and file watching.
