//! The operator's interrupts during a stop: SIGINT or SIGTERM once, then twice.

use tokio::sync::watch;

use crate::run::orchestrate::Interrupt;

/// SIGINT or SIGTERM once: start no new service, let running sequences finish within their
/// budgets. Twice: abandon the run at once, killing nothing.
pub async fn watch_interrupts(interrupt: watch::Sender<Interrupt>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut received = 0;
    loop {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        received += 1;
        if received == 1 {
            crate::output::logs::info(
                None,
                "interrupted: no new service will be started; running sequences finish within their budgets (interrupt again to abandon them)",
            );
            let _ = interrupt.send(Interrupt::NoNewServices);
        } else {
            crate::output::logs::info(
                None,
                "interrupted twice: abandoning the running sequences without killing anything; writing the partial report",
            );
            let _ = interrupt.send(Interrupt::Abandon);
            return;
        }
    }
}
