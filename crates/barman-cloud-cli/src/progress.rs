//! Progress bars for long interactive work, drawn on stderr only when it is a terminal
//! (indicatif hides them otherwise) so that logs and scripts see nothing extra.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use barman_cloud::backup::WalkProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows the bytes a backup has read against the cluster size until dropped.
pub struct BackupProgress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl BackupProgress {
    pub fn start(progress: Arc<WalkProgress>, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} read ({bytes_per_sec}, {elapsed}) {wide_bar}",
            )
            .expect("valid progress template"),
        );
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                loop {
                    bar.set_length(progress.total.load(Ordering::Relaxed));
                    bar.set_position(progress.bytes.load(Ordering::Relaxed));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        BackupProgress { bar, ticker }
    }
}

impl Drop for BackupProgress {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
