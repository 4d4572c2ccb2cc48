//! `-o markdown`: a pull-request comment. A verdict line, a summary table
//! (one row per rule), then each rule's results collapsed in a
//! `<details>` block, in the report's stable order. Bounded: GitHub refuses
//! comments over 65,536 characters, so the text stops at [`MAX_BYTES`] and
//! its last line says how many results were left out. Names and messages are
//! escaped, so an object called `<script>` or `a|b` stays text.

use std::fmt::Write;

use super::{Item, Level, Report, truncate};

/// The comment's size at most (GitHub's limit is 65,536 characters).
pub const MAX_BYTES: usize = 60_000;
/// One message at most, so one result cannot crowd out the others.
const MAX_MESSAGE_BYTES: usize = 2_000;
/// Room kept for the closing tag and the line saying what was left out.
const RESERVE: usize = 400;

/// Markdown or HTML in `s` as plain text: HTML's specials as entities (`|`
/// too, which would split a table cell), markdown's inline specials behind a
/// backslash, line breaks as spaces, other control characters dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '|' => out.push_str("&#124;"),
            '\r' | '\n' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn icon(level: Level, fails: bool) -> &'static str {
    match (fails, level) {
        (true, _) => "❌",
        (false, Level::Error | Level::Warning) => "⚠️",
        (false, Level::Note) => "ℹ️",
    }
}

/// One result as a list item.
fn line(report: &Report, item: &Item) -> String {
    let mut out = format!(
        "- {} **{}**",
        icon(item.level, item.fails),
        escape(&item.subject)
    );
    if let Some(file) = report.file_of(item) {
        let at = if item.line > 0 {
            format!("{file}:{}", item.line)
        } else {
            file.to_string()
        };
        let _ = write!(out, " ({})", escape(&at));
    }
    let _ = write!(
        out,
        ": {}",
        escape(&truncate(&item.message, MAX_MESSAGE_BYTES))
    );
    if let Some(help) = &item.help {
        let _ = write!(
            out,
            "<br>Fix: {}",
            escape(&truncate(help, MAX_MESSAGE_BYTES))
        );
    }
    out.push('\n');
    out
}

/// The comment, at most `max` bytes.
pub fn render(report: &Report, max: usize) -> String {
    let verdict = if report.failed { "❌" } else { "✅" };
    let mut out = format!(
        "### {verdict} orgaccess {}: {}\n\n",
        report.command,
        escape(&report.headline)
    );
    let groups = report.by_rule();
    if !groups.is_empty() {
        out.push_str("| | rule | level | results | failing |\n|---|---|---|---:|---:|\n");
        for (rule, level, items) in &groups {
            let failing = items.iter().filter(|i| i.fails).count();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {failing} |",
                icon(*level, failing > 0),
                escape(rule),
                level.as_str(),
                items.len()
            );
        }
        out.push('\n');
    }
    if !report.passed.is_empty() {
        let n = report.passed.len();
        let (one, many) = report.passed_noun;
        let _ = writeln!(out, "{n} {}.\n", if n == 1 { one } else { many });
    }
    let budget = max.saturating_sub(RESERVE);
    let mut written = 0;
    'groups: for (rule, level, items) in &groups {
        let failing = items.iter().filter(|i| i.fails).count();
        let open = format!(
            "<details><summary>{} {} ({})</summary>\n\n",
            icon(*level, failing > 0),
            escape(rule),
            items.len()
        );
        const CLOSE: &str = "\n</details>\n\n";
        if out.len() + open.len() + CLOSE.len() > budget {
            break;
        }
        out.push_str(&open);
        for item in items {
            let l = line(report, item);
            if out.len() + l.len() + CLOSE.len() > budget {
                out.push_str(CLOSE);
                break 'groups;
            }
            out.push_str(&l);
            written += 1;
        }
        out.push_str(CLOSE);
    }
    let left = report.items.len() - written;
    if left > 0 {
        let _ = writeln!(
            out,
            "_{left} more {} left out of this comment (at most {max} bytes): `{}` lists them all._",
            if left == 1 { "result" } else { "results" },
            escape(&report.full_command).replace('`', "")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn names_cannot_break_the_table_or_inject_html() {
        let out = render(&sample(6), MAX_BYTES);
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;&#124;x0&amp;&quot;'\\`\\*\\_\\[a\\](b)"));
        // Every line of the table has its five cells.
        for l in out.lines().filter(|l| l.starts_with('|')) {
            assert_eq!(l.matches('|').count(), 6, "{l}");
        }
        // A name's line break does not start a new line, nor does a message's.
        assert!(out.lines().all(|l| !l.starts_with("line:2")), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\0'));
        // Only our own tags.
        let tags: Vec<&str> = out.match_indices('<').map(|(i, _)| &out[i..]).collect();
        assert!(
            tags.iter().all(
                |t| ["<details>", "<summary>", "</summary>", "</details>", "<br>"]
                    .iter()
                    .any(|ok| t.starts_with(ok))
            ),
            "{out}"
        );
    }

    #[test]
    fn verdict_summary_and_details_in_the_report_s_order() {
        let r = sample(6);
        let out = render(&r, MAX_BYTES);
        assert!(out.starts_with("### ❌ orgaccess check: 2 objects denied in namespace acme\n"));
        assert!(
            out.contains("| ❌ | NoEscalation | error | 2 | 2 |"),
            "{out}"
        );
        assert!(out.contains("| ⚠️ | advice-x | warning | 4 | 0 |"), "{out}");
        assert!(out.contains("\n1 object allowed.\n"), "{out}");
        assert_eq!(out.matches("<details>").count(), 2);
        assert_eq!(out.matches("</details>").count(), 2);
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("- ")).collect();
        assert_eq!(lines.len(), 6);
        // Failing results first, with their location.
        assert!(lines[0].starts_with("- ❌ **Group acme/") && lines[0].contains("(org/g0.yaml)"));
        assert!(!out.contains("left out"));
        assert_eq!(render(&r, MAX_BYTES), out, "stable");
    }

    #[test]
    fn a_huge_report_is_cut_at_the_cap_and_says_how_much_is_left_out() {
        let r = sample(100_000);
        let out = render(&r, MAX_BYTES);
        assert!(out.len() <= MAX_BYTES, "{}", out.len());
        let shown = out.lines().filter(|l| l.starts_with("- ")).count();
        assert!(shown > 50, "{shown}");
        let last = out.lines().last().unwrap();
        assert_eq!(
            last,
            format!(
                "_{} more results left out of this comment (at most 60000 bytes): `orgaccess check -o json` lists them all._",
                100_000 - shown
            )
        );
        assert_eq!(
            out.matches("<details>").count(),
            out.matches("</details>").count()
        );
        // One huge message is cut too.
        let mut one = sample(1);
        one.items[0].message = "x".repeat(1_000_000);
        let out = render(&one, MAX_BYTES);
        assert!(out.len() < 3_000 && out.contains("x…"), "{}", out.len());
    }
}
