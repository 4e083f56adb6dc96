//! What a build prints: docker's classic-builder step lines on stdout, nothing but the
//! image ID with `-q`. Kept in one place so the format is consistent and testable.

use std::io::Write;

/// The build's printer.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `-q`: only the final image ID is printed, and RUN output is discarded.
    pub quiet: bool,
}

impl Output {
    /// Prints one line (flushed at once, so it interleaves correctly with the live
    /// output of a RUN, which writes to the same stdout from another process).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// `Step N/M : INSTRUCTION`.
    pub fn step(&self, n: usize, total: usize, source: &str) {
        self.line(&format!("Step {n}/{total} : {}", one_line(source)));
    }

    /// ` ---> TEXT`.
    pub fn arrow(&self, text: &str) {
        self.line(&format!(" ---> {text}"));
    }
}

/// A multi-line instruction (heredoc) shown on one line, as docker does.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
