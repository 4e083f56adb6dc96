//! Per-layer progress: an indicatif bar each on a terminal, plain status lines
//! (`abc123def456: Pull complete`) otherwise, so logs and tests see the same words.

use std::io::{IsTerminal, Read};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress display for one transfer.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    quiet: bool,
}

/// One item's (layer's) progress line.
pub struct Item {
    bar: Option<ProgressBar>,
    label: String,
    quiet: bool,
}

impl Progress {
    /// Bars when stderr is a terminal and not `quiet`; plain lines on stdout otherwise.
    pub fn new(quiet: bool) -> Self {
        let multi = (!quiet && std::io::stderr().is_terminal()).then(MultiProgress::new);
        Progress { multi, quiet }
    }

    /// A line for `label` (a short digest), `total` bytes if known.
    pub fn item(&self, label: &str, total: Option<u64>) -> Item {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total.unwrap_or(0)));
            if let Ok(style) =
                ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar.set_message("Waiting");
            bar
        });
        Item {
            bar,
            label: label.to_string(),
            quiet: self.quiet,
        }
    }

    /// Prints a line above the bars (or plainly).
    pub fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None if !self.quiet => println!("{msg}"),
            None => {}
        }
    }
}

impl Item {
    /// Sets the phase ("Downloading", "Extracting"...).
    pub fn phase(&self, msg: &'static str) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    /// Advances the bar past bytes already there (a resumed download).
    pub fn skip(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }

    /// Wraps a reader so reading advances the bar.
    pub fn wrap<'a, R: Read + Send + 'a>(&self, r: R) -> Box<dyn Read + Send + 'a> {
        match &self.bar {
            Some(b) => Box::new(b.wrap_read(r)),
            None => Box::new(r),
        }
    }

    /// Finishes with a final status ("Pull complete", "Already exists").
    pub fn done(&self, msg: &'static str) {
        match &self.bar {
            Some(b) => b.finish_with_message(msg),
            None if !self.quiet => println!("{}: {msg}", self.label),
            None => {}
        }
    }
}
