//! `-o junit`: JUnit XML, which CI systems show as test results (GitLab's
//! `artifacts: reports: junit`, Jenkins, most GitHub test-report actions).
//! One test suite per run; one test case per subject (an object, or a
//! document that could not be read), passed or failed, with one `failure`
//! when any of its results fails the run and the other results in
//! `system-out`.

use std::fmt::Write;

use super::{Item, Report};

/// `s` as XML 1.0 text or attribute value: the five specials and line
/// breaks as references, characters XML 1.0 cannot hold dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// One test case: a subject and its results.
struct Case<'a> {
    subject: &'a str,
    file: Option<&'a str>,
    line: u64,
    items: Vec<&'a Item>,
}

fn cases(report: &Report) -> Vec<Case<'_>> {
    let mut cases: Vec<Case> = Vec::new();
    for item in &report.items {
        let file = report.file_of(item);
        match cases
            .iter_mut()
            .find(|c| c.subject == item.subject && c.file == file)
        {
            Some(c) => c.items.push(item),
            None => cases.push(Case {
                subject: &item.subject,
                file,
                line: item.line,
                items: vec![item],
            }),
        }
    }
    cases.extend(report.passed.iter().map(|p| Case {
        subject: &p.subject,
        file: p.file.as_deref(),
        line: p.line,
        items: Vec::new(),
    }));
    cases
}

fn result_text(item: &Item) -> String {
    let mut s = format!("[{}] {}: {}", item.rule, item.level.as_str(), item.message);
    if let Some(help) = &item.help {
        let _ = write!(s, "\nfix: {help}");
    }
    s
}

pub fn render(report: &Report) -> String {
    let cases = cases(report);
    let failures = cases
        .iter()
        .filter(|c| c.items.iter().any(|i| i.fails))
        .count();
    let name = escape(&format!("orgaccess {}", report.command));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"0\"",
        cases.len()
    );
    let _ = writeln!(out, "<testsuites name=\"{name}\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"{name}\" {counts} skipped=\"0\">");
    let _ = writeln!(
        out,
        "    <properties><property name=\"verdict\" value=\"{}\"/></properties>",
        escape(&report.headline)
    );
    for c in &cases {
        let mut attrs = format!(
            "classname=\"orgaccess.{}\" name=\"{}\"",
            escape(report.command),
            escape(c.subject)
        );
        if let Some(f) = c.file {
            let _ = write!(attrs, " file=\"{}\"", escape(f));
            if c.line > 0 {
                let _ = write!(attrs, " line=\"{}\"", c.line);
            }
        }
        if c.items.is_empty() {
            let _ = writeln!(out, "    <testcase {attrs}/>");
            continue;
        }
        let _ = writeln!(out, "    <testcase {attrs}>");
        let (failing, other): (Vec<&Item>, Vec<&Item>) = c.items.iter().partition(|i| i.fails);
        if let Some(first) = failing.first() {
            let rules: Vec<&str> = failing.iter().map(|i| i.rule.as_str()).collect();
            let text: Vec<String> = failing.iter().map(|i| result_text(i)).collect();
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                escape(&rules.join(",")),
                escape(&first.message),
                escape(&text.join("\n"))
            );
        }
        if !other.is_empty() {
            let text: Vec<String> = other.iter().map(|i| result_text(i)).collect();
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&text.join("\n"))
            );
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn a_real_parser_reads_back_every_case_and_failure() {
        let r = sample(9);
        let xml = render(&r);
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let suites = doc.root_element();
        assert_eq!(suites.tag_name().name(), "testsuites");
        let suite = suites
            .children()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        // Nine hostile subjects, each its own, and one object passed.
        assert_eq!(cases.len(), 10);
        assert_eq!(suite.attribute("tests"), Some("10"));
        let failing: Vec<_> = cases
            .iter()
            .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
            .collect();
        assert_eq!(failing.len(), r.items.iter().filter(|i| i.fails).count());
        assert_eq!(
            suite.attribute("failures"),
            Some(failing.len().to_string().as_str())
        );
        // Names come back exactly, less what XML cannot hold.
        let first = &r.items[0];
        assert!(first.fails);
        assert_eq!(cases[0].attribute("name"), Some(first.subject.as_str()));
        assert_eq!(failing[0].attribute("type"), Some("NoEscalation"));
        assert_eq!(
            failing[0].attribute("message"),
            Some(first.message.replace(['\u{1b}', '\0'], "").as_str())
        );
        assert!(
            failing[0]
                .text()
                .unwrap()
                .contains("fix: remove it, then <b>apply</b>")
        );
        assert_eq!(cases[0].attribute("file"), first.file.as_deref());
        let passed = cases
            .iter()
            .find(|c| c.attribute("name") == Some("Member acme/ada"));
        assert!(passed.is_some_and(|c| c.children().all(|n| !n.is_element())));
        // A result that does not fail the run is told, not failed.
        let told = cases
            .iter()
            .find(|c| c.children().any(|n| n.has_tag_name("system-out")))
            .unwrap();
        assert!(told.children().all(|n| !n.has_tag_name("failure")));
    }

    #[test]
    fn escaping_covers_xml_specials_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            escape("<a href=\"x\">&'\n\u{7}\u{fffe}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#10;"
        );
    }
}
