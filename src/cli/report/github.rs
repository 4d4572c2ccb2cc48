//! `-o github`: GitHub Actions workflow commands. Each result is one
//! `::error|warning|notice file=PATH,line=N,title=TITLE::MESSAGE` line,
//! which the runner turns into an annotation on the pull request's files;
//! the last line is the verdict, as plain text for the log. Escaping as the
//! runner reads it: in the message `%`, `\r` and `\n` as `%25`, `%0D`,
//! `%0A`; in a property also `:` and `,` as `%3A`, `%2C`.

use std::fmt::Write;

use super::{Level, Report};

/// A command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for item in &report.items {
        let command = match item.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "notice",
        };
        let mut props = Vec::new();
        if let Some(file) = report.file_of(item) {
            props.push(format!("file={}", escape_property(file)));
            if item.line > 0 && item.file.is_some() {
                props.push(format!("line={}", item.line));
            }
        }
        props.push(format!(
            "title={}",
            escape_property(&format!("{} {}", item.rule, item.subject))
        ));
        let mut message = item.message.clone();
        if let Some(help) = &item.help {
            let _ = write!(message, "\nFix: {help}");
        }
        let _ = writeln!(
            out,
            "::{command} {}::{}",
            props.join(","),
            escape_data(&message)
        );
    }
    let _ = writeln!(
        out,
        "orgaccess {}: {}",
        report.command,
        escape_data(&report.headline)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn one_command_per_result_with_the_runner_s_escaping() {
        let r = sample(4);
        let out = render(&r);
        let lines: Vec<&str> = out.lines().collect();
        // A line per result, the verdict last: no name's line break splits one.
        assert_eq!(lines.len(), 5, "{out}");
        assert!(lines[..4].iter().all(|l| l.starts_with("::")));
        assert!(lines[0].starts_with("::error file=org/g0.yaml,title=NoEscalation Group acme/"));
        // In the title, `:` and `,` would end the property: escaped.
        assert!(lines[0].contains("%0D%0Aline%3A2%2C3%25"), "{}", lines[0]);
        // In the message only `%` and line breaks are.
        let message = lines[0]
            .split_once("::")
            .unwrap()
            .1
            .split_once("::")
            .unwrap()
            .1;
        assert!(message.contains("%0D%0Aline:2,3%25"), "{message}");
        assert!(message.ends_with("%0AFix: remove it, then <b>apply</b>"));
        assert!(lines.iter().any(|l| l.starts_with("::warning ")));
        assert_eq!(
            lines[4],
            "orgaccess check: 2 objects denied in namespace acme"
        );
    }

    #[test]
    fn escaping_is_github_s() {
        assert_eq!(escape_data("50%\r\nok: a,b"), "50%25%0D%0Aok: a,b");
        assert_eq!(escape_property("50%\r\nok: a,b"), "50%25%0D%0Aok%3A a%2Cb");
    }
}
