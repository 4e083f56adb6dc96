//! Output helpers shared by the commands: docker-style sizes, ages and tables.

use chrono::{DateTime, Utc};

/// Bytes the way docker prints them (SI units): `4.26MB`, `512B`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        let s = format!("{v:.3}");
        let s = s.chars().take(4).collect::<String>();
        format!("{}{}", s.trim_end_matches('.'), UNITS[i])
    }
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// "2 hours ago", as docker says it.
pub fn time_ago(t: Option<&str>) -> String {
    let Some(t) = parse_time(t) else {
        return "N/A".to_string();
    };
    let secs = (Utc::now() - t).num_seconds();
    if secs < 1 {
        return "Less than a second ago".into();
    }
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 14 => (s / 86400, "day"),
        s if s < 86400 * 60 => (s / (86400 * 7), "week"),
        s if s < 86400 * 365 * 2 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    if n == 1 {
        let a = if unit == "hour" { "An" } else { "A" };
        if unit == "minute" || unit == "second" {
            return format!("About {} {unit} ago", a.to_lowercase());
        }
        return format!("{a} {unit} ago");
    }
    format!("{n} {unit}s ago")
}

/// Prints rows as columns padded with three spaces, like docker's tabwriter.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Shortens `s` to `n` characters with an ellipsis, as docker's history does.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(100_000), "100kB");
    }
}

/// Renders a Go-template-like format the way `docker ... --format` is mostly used:
/// `{{.Field.Sub}}` prints a value (strings bare, others as JSON), `{{json .Field}}`
/// prints JSON, `{{.}}` the whole value; `\t` and `\n` escapes are honoured. Anything
/// richer (range, if, functions) is refused with a clear message.
pub fn render_template(tpl: &str, v: &serde_json::Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template {tpl:?}: unclosed {{{{"))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, action),
        };
        if !path.starts_with('.') {
            anyhow::bail!(
                "template {tpl:?}: only {{{{.Field}}}} and {{{{json .Field}}}} are supported"
            );
        }
        let mut cur = v;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            cur = cur
                .get(key)
                .ok_or_else(|| anyhow::anyhow!("template {tpl:?}: no field {key:?}"))?;
        }
        match cur {
            serde_json::Value::String(s) if !as_json => out.push_str(s),
            serde_json::Value::Null if !as_json => out.push_str("<no value>"),
            other => out.push_str(&serde_json::to_string(other)?),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\t", "\t").replace("\\n", "\n"))
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn renders_fields_and_json() {
        let v = serde_json::json!({"Id": "sha256:x", "Config": {"Env": ["A=1"]}, "Size": 3});
        assert_eq!(render_template("{{.Id}}", &v).unwrap(), "sha256:x");
        assert_eq!(
            render_template("{{json .Config.Env}} {{.Size}}", &v).unwrap(),
            "[\"A=1\"] 3"
        );
        assert!(render_template("{{range .X}}", &v).is_err());
        assert!(render_template("{{.Nope}}", &v).is_err());
    }
}
