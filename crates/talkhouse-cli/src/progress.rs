//! Progress bars on a terminal; nothing extra otherwise (logs say the same).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use talkhouse_sync::{Progress, StreamReport};

/// One spinner per stream, with its row count.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
}

impl Bars {
    /// Bars when stderr is a terminal.
    pub fn if_terminal() -> Option<Arc<dyn Progress>> {
        if std::io::stderr().is_terminal() {
            Some(Arc::new(Self {
                multi: MultiProgress::new(),
                bars: Mutex::default(),
            }))
        } else {
            None
        }
    }

    fn bar(&self, source: &str, stream: &str) -> ProgressBar {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bars.entry((source.to_owned(), stream.to_owned()))
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:30} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(format!("{source}.{stream}"));
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            })
            .clone()
    }
}

impl Progress for Bars {
    fn started(&self, source: &str, stream: &str) {
        self.bar(source, stream).set_message("starting");
    }

    fn committed(&self, source: &str, stream: &str, rows: u64, quarantined: u64) {
        let msg = if quarantined > 0 {
            format!("{rows} rows, {quarantined} quarantined")
        } else {
            format!("{rows} rows")
        };
        self.bar(source, stream).set_message(msg);
    }

    fn finished(&self, r: &StreamReport) {
        let b = self.bar(&r.source, &r.stream);
        b.finish_with_message(format!(
            "{} — {} rows, {} quarantined",
            r.status.as_str(),
            r.rows,
            r.quarantined
        ));
    }
}
