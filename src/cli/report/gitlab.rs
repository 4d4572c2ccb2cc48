//! `-o gitlab`: a GitLab Code Quality report, the JSON array GitLab reads
//! from a job's `artifacts: reports: codequality` file and shows on the merge
//! request (its widget, and the changed lines in the diff). Each result has
//! its description, check name, fingerprint, severity and location
//! (`path`, `lines.begin`); GitLab needs a location, so a result about no
//! manifest is placed at the report's default file, line 1.

use serde_json::{Value, json};

use super::{Level, Report};

/// GitLab's severities: info, minor, major, critical, blocker.
fn severity(level: Level, fails: bool) -> &'static str {
    match (level, fails) {
        (Level::Error, true) => "critical",
        (Level::Error, false) | (Level::Warning, true) => "major",
        (Level::Warning, false) => "minor",
        (Level::Note, _) => "info",
    }
}

pub fn render(report: &Report) -> String {
    let issues: Vec<Value> = report
        .items
        .iter()
        .map(|item| {
            let mut description = format!("{}: {}", item.subject, item.message);
            if let Some(help) = &item.help {
                description.push_str(" Fix: ");
                description.push_str(help);
            }
            let line = if item.file.is_some() {
                item.line.max(1)
            } else {
                1
            };
            json!({
                "type": "issue",
                "description": description,
                "check_name": item.rule,
                "fingerprint": item.fingerprint(),
                "severity": severity(item.level, item.fails),
                "location": {
                    "path": report.file_of(item).unwrap_or("."),
                    "lines": { "begin": line },
                },
            })
        })
        .collect();
    super::super::output::to_json(&issues)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_result_has_gitlab_s_required_fields() {
        let r = sample(8);
        let doc: Value = serde_json::from_str(&render(&r)).unwrap();
        let issues = doc.as_array().unwrap();
        assert_eq!(issues.len(), 8);
        for (i, issue) in issues.iter().enumerate() {
            for field in ["description", "check_name", "fingerprint", "severity"] {
                assert!(issue[field].is_string(), "{field} in {issue}");
            }
            assert!(issue["location"]["path"].is_string());
            assert!(issue["location"]["lines"]["begin"].as_u64().unwrap() >= 1);
            assert_eq!(issue["fingerprint"], r.items[i].fingerprint());
        }
        assert_eq!(issues[0]["severity"], "critical");
        assert!(issues.iter().any(|i| i["severity"] == "minor"));
        let fps: std::collections::BTreeSet<_> = issues
            .iter()
            .map(|i| i["fingerprint"].to_string())
            .collect();
        assert_eq!(fps.len(), 8, "unique");
    }
}
