//! Ctrl-C and SIGTERM (a cluster's pre-emption): the first one asks the
//! training loop to stop after the batch in progress; the epoch in progress is
//! abandoned and the last completed epoch's checkpoint stays, so running the
//! same command again resumes there. A second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls are no-ops).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("second interrupt: exiting now");
            std::process::exit(130);
        }
        eprintln!("interrupt: stopping after this batch (again to exit at once)");
    });
}

/// Whether an interrupt has been requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
