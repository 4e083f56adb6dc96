//! From text to the untyped tree: logical lines, keyword dispatch and heredocs.

use super::args::{self, Parsed};
use super::directives::{DirectiveParser, Directives};
use super::error::ParseError;
use super::heredoc::heredocs_from_line;
use super::lines::{PhysicalLines, next_logical_line, read_heredoc_bodies};
use super::node::{Arg, Node};
use super::split::split_command;

/// The untyped parse of a whole file.
pub struct RawParse {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<String>,
    /// Number of physical lines read.
    pub lines: usize,
}

/// Builds the node for one logical line (keyword dispatch to the line parsers).
pub fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let (keyword, flags, rest) = split_command(line);
    let parsed: Parsed = match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => args::parse_maybe_json_to_list(&rest)?,
        "arg" => args::parse_name_or_name_val(&rest, escape),
        "cmd" | "entrypoint" | "run" | "shell" => args::parse_maybe_json(&rest)?,
        "env" => args::parse_name_val(&rest, "ENV", escape)?,
        "label" => args::parse_name_val(&rest, "LABEL", escape)?,
        "expose" | "from" => args::parse_strings_whitespace_delimited(&rest),
        "healthcheck" => args::parse_health_config(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => args::parse_string(&rest),
        "onbuild" => {
            if rest.is_empty() {
                Parsed::default()
            } else {
                let child = node_from_line(&rest, escape)?;
                Parsed {
                    args: vec![Arg::Nested(Box::new(child))],
                    json: false,
                }
            }
        }
        // unknown keywords are reported by the typed layer, with a suggestion
        _ => Parsed::default(),
    };
    Ok(Node {
        keyword,
        flags,
        args: parsed.args,
        json: parsed.json,
        original: line.to_string(),
        ..Node::default()
    })
}

/// Whether heredocs are looked for on this node's line (RUN, COPY, ADD, also as an
/// ONBUILD trigger; not in exec form).
fn can_contain_heredoc(node: &Node) -> bool {
    let target = if node.command() == "onbuild" {
        node.nested().unwrap_or(node)
    } else {
        node
    };
    matches!(target.command().as_str(), "run" | "copy" | "add") && !target.json
}

/// Reads the whole file into nodes.
pub fn parse_raw(text: &str) -> Result<RawParse, ParseError> {
    let mut input = PhysicalLines::new(text);
    let mut directives = DirectiveParser::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while let Some(logical) = next_logical_line(&mut input, &mut directives)? {
        let escape = directives.directives.escape;
        let mut node = node_from_line(&logical.text, escape)
            .map_err(|m| ParseError::new(logical.start, m, logical.text.clone()))?;
        if logical.had_empty_continuation {
            warnings.push(format!(
                "line {}: empty continuation line found in: {} (empty continuation lines will become errors in a future release)",
                logical.start,
                logical.text.trim()
            ));
        }
        if can_contain_heredoc(&node) && logical.text.contains("<<") {
            node.heredocs = heredocs_from_line(&logical.text)
                .map_err(|m| ParseError::new(logical.start, m, logical.text.clone()))?;
            read_heredoc_bodies(&mut input, &mut node, logical.start)?;
        }
        node.start_line = logical.start;
        node.end_line = input.line_number();
        nodes.push(node);
    }
    Ok(RawParse {
        directives: directives.directives,
        nodes,
        warnings,
        lines: input.line_number(),
    })
}
