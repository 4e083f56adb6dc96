//! `created_by` strings for image history entries, in docker's classic-builder form:
//! `/bin/sh -c #(nop)  CMD ["sh"]` for metadata steps and `|1 A=b /bin/sh -c make` for a
//! RUN that sees build args. Matching docker keeps `imagectl history` familiar and lets
//! tools that parse docker's history read ours.

use crate::dockerfile::go_quote;

/// The shell docker's classic builder names in `#(nop)` entries.
const NOP_SHELL: &str = "/bin/sh -c";

/// A metadata step (CMD, ENV, LABEL, ...): `/bin/sh -c #(nop)  MESSAGE`. Docker joins
/// the shell, `#(nop) ` and the message with spaces, hence the double space.
pub fn nop(message: &str) -> String {
    format!("{NOP_SHELL} #(nop)  {message}")
}

/// WORKDIR, COPY and ADD: docker writes these with a single space after `#(nop)`.
pub fn nop_single(message: &str) -> String {
    format!("{NOP_SHELL} #(nop) {message}")
}

/// A list the way Go's `%q` prints a `[]string`: `["a" "b"]`, as docker shows CMD and
/// ENTRYPOINT.
pub fn go_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// A RUN step: its argv joined by spaces, prefixed with `|N k=v ...` when build args
/// (sorted by name) were in effect, as docker records them so the cache sees them.
pub fn run(argv: &[String], build_args: &[(String, String)]) -> String {
    let cmd = argv.join(" ");
    if build_args.is_empty() {
        return cmd;
    }
    let mut args: Vec<&(String, String)> = build_args.iter().collect();
    args.sort();
    let pairs: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} {cmd}", args.len(), pairs.join(" "))
}

/// COPY/ADD: `/bin/sh -c #(nop) COPY file:HEX in /dest ` (`dir:` when the source is a
/// directory or several sources), with docker's trailing space.
pub fn copy(keyword: &str, kind: &str, checksum_hex: &str, dest: &str) -> String {
    nop_single(&format!("{keyword} {kind}:{checksum_hex} in {dest} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_entries_match_docker() {
        assert_eq!(
            nop(&format!("CMD {}", go_list(&["sh".into()]))),
            "/bin/sh -c #(nop)  CMD [\"sh\"]"
        );
        assert_eq!(
            nop(&format!(
                "ENTRYPOINT {}",
                go_list(&["nginx".into(), "-g".into(), "daemon off;".into()])
            )),
            "/bin/sh -c #(nop)  ENTRYPOINT [\"nginx\" \"-g\" \"daemon off;\"]"
        );
        assert_eq!(nop_single("WORKDIR /app"), "/bin/sh -c #(nop) WORKDIR /app");
        assert_eq!(
            copy("COPY", "file", "ab12", "/x"),
            "/bin/sh -c #(nop) COPY file:ab12 in /x "
        );
    }

    #[test]
    fn run_with_and_without_build_args() {
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "make all".into()];
        assert_eq!(run(&argv, &[]), "/bin/sh -c make all");
        let args = vec![
            ("V".to_string(), "2".to_string()),
            ("A".into(), "x y".into()),
        ];
        assert_eq!(run(&argv, &args), "|2 A=x y V=2 /bin/sh -c make all");
    }
}
