//! Output: the `-o` format every command takes, aligned tables and
//! (optional) colour.
//!
//! Colour is used only when the stream is a terminal and `NO_COLOR` is unset
//! or empty (<https://no-color.org>), so piped output is plain and stable.

use std::io::IsTerminal;

use clap::ValueEnum;
use serde::Serialize;

/// `-o`: the output format of every command that prints data. JSON and YAML
/// are the same document (one serialization, two syntaxes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables and messages for people (for commands that print
    /// manifests, the manifests as YAML).
    #[default]
    #[value(alias = "table")]
    Human,
    /// Stable JSON for scripts.
    Json,
    /// The same document as YAML.
    Yaml,
}

impl OutputFormat {
    /// `value` in JSON or YAML; for people, what `human` writes.
    pub fn render<T: Serialize>(self, value: &T, human: impl FnOnce() -> String) -> String {
        match self {
            OutputFormat::Human => human(),
            OutputFormat::Json => to_json(value),
            OutputFormat::Yaml => to_yaml(value),
        }
    }

    /// For commands whose output is a document (manifests, the platform's
    /// JSON): JSON or YAML, whichever `human` means for that command.
    pub fn document<T: Serialize>(self, value: &T, human: OutputFormat) -> String {
        match (self, human) {
            (OutputFormat::Json, _) | (OutputFormat::Human, OutputFormat::Json) => to_json(value),
            _ => to_yaml(value),
        }
    }
}

/// JSON with a trailing newline; our types always serialize.
pub fn to_json<T: Serialize>(v: &T) -> String {
    match serde_json::to_string_pretty(v) {
        Ok(s) => s + "\n",
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

/// YAML (the YAML crate the CRDs are written with); our types always serialize.
pub fn to_yaml<T: Serialize>(v: &T) -> String {
    match serde_saphyr::to_string(v) {
        Ok(s) if s.ends_with('\n') => s,
        Ok(s) => s + "\n",
        Err(e) => format!("error: {:?}\n", e.to_string()),
    }
}

/// ANSI styles, or nothing when colour is off.
#[derive(Clone, Copy, Debug)]
pub struct Styles {
    pub enabled: bool,
}

fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Styles {
    pub fn stdout() -> Styles {
        Styles {
            enabled: std::io::stdout().is_terminal() && !no_color_env(),
        }
    }

    pub fn stderr() -> Styles {
        Styles {
            enabled: std::io::stderr().is_terminal() && !no_color_env(),
        }
    }

    pub fn plain() -> Styles {
        Styles { enabled: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn error(&self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub fn ok(&self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn warn(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }

    pub fn style(&self, s: Style, t: &str) -> String {
        match s {
            Style::Plain => t.to_string(),
            Style::Bold => self.bold(t),
            Style::Ok => self.ok(t),
            Style::Warn => self.warn(t),
            Style::Error => self.error(t),
            Style::Dim => self.dim(t),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Plain,
    Bold,
    Ok,
    Warn,
    Error,
    Dim,
}

/// A table whose columns are padded to their widest cell. Widths are counted
/// on the plain text, so colour never breaks alignment; the last column is not
/// padded (no trailing spaces).
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, styles: Styles) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(String, Style)>, out: &mut String| {
            let mut text = String::new();
            for (i, (cell, style)) in cells.iter().enumerate().take(n) {
                let last = i + 1 == n;
                text.push_str(&styles.style(*style, cell));
                if !last {
                    let pad = widths[i] - cell.chars().count() + 2;
                    text.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(
            self.headers
                .iter()
                .map(|h| (h.clone(), Style::Bold))
                .collect(),
            &mut out,
        );
        for row in &self.rows {
            line(row.clone(), &mut out);
        }
        out
    }
}

/// A plain cell.
pub fn cell(s: impl Into<String>) -> (String, Style) {
    (s.into(), Style::Plain)
}

/// A styled cell.
pub fn styled(s: impl Into<String>, style: Style) -> (String, Style) {
    (s.into(), style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_are_one_document() {
        let v = serde_json::json!({"name": "ada", "groups": ["a", "b"]});
        let json = OutputFormat::Json.render(&v, || unreachable!());
        let yaml = OutputFormat::Yaml.render(&v, || unreachable!());
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), v);
        assert_eq!(
            serde_saphyr::from_str::<serde_json::Value>(&yaml).unwrap(),
            v
        );
        assert_eq!(
            OutputFormat::Human.render(&v, || "table\n".into()),
            "table\n"
        );
        assert_eq!(OutputFormat::Human.document(&v, OutputFormat::Yaml), yaml);
        assert_eq!(OutputFormat::Human.document(&v, OutputFormat::Json), json);
    }

    #[test]
    fn columns_align_without_trailing_spaces() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec![cell("wide cell"), cell("x")]);
        t.row(vec![cell("b"), cell("")]);
        assert_eq!(
            t.render(Styles::plain()),
            "A          LONG HEADER\nwide cell  x\nb\n"
        );
    }

    #[test]
    fn colour_does_not_change_widths() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec![styled("red", Style::Error), cell("x")]);
        let out = t.render(Styles { enabled: true });
        assert!(out.contains("\x1b[1;31mred\x1b[0m  x"));
    }
}
