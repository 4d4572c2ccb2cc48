//! `-o sarif`: SARIF 2.1.0, the static-analysis format code scanning reads
//! (GitHub's `github/codeql-action/upload-sarif`, GitLab, IDEs). One run of
//! the tool `orgaccess`: its rules (each rule or finding id the results
//! name, with a help page), and one result per item with its level, message,
//! the manifest and line it is about, the objects as logical locations, and
//! a fingerprint that does not move with the line. Validated against the
//! official schema in the tests (`tests/fixtures/sarif/`).

use serde_json::{Value, json};

use super::{DOCS, Item, Report};

/// The schema's own id (the OASIS standard's, errata 01).
pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The fingerprint's name in `partialFingerprints` (versioned, as SARIF asks).
pub const FINGERPRINT: &str = "orgaccess/v1";

fn result(report: &Report, item: &Item, rule_index: Option<usize>) -> Value {
    let mut text = item.message.clone();
    if let Some(help) = &item.help {
        text.push_str("\nFix: ");
        text.push_str(help);
    }
    let mut r = json!({
        "ruleId": item.rule,
        "level": item.level.as_str(),
        "message": { "text": text },
        "partialFingerprints": { FINGERPRINT: item.fingerprint() },
        "properties": { "failsRun": item.fails },
    });
    if let Some(i) = rule_index {
        r["ruleIndex"] = json!(i);
    }
    let mut location = json!({});
    if let Some(file) = report.file_of(item) {
        let mut physical = json!({ "artifactLocation": { "uri": uri(file) } });
        if item.line > 0 && item.file.is_some() {
            physical["region"] = json!({ "startLine": item.line });
        }
        location["physicalLocation"] = physical;
    }
    if !item.objects.is_empty() {
        location["logicalLocations"] = item
            .objects
            .iter()
            .map(|o| {
                let fq = match &item.namespace {
                    Some(ns) => format!("{ns}/{o}"),
                    None => o.clone(),
                };
                json!({ "fullyQualifiedName": fq, "kind": "object" })
            })
            .collect();
    }
    if location.as_object().is_some_and(|o| !o.is_empty()) {
        r["locations"] = json!([location]);
    }
    r
}

/// A relative path as a URI reference: its bytes outside the unreserved
/// set and `/` percent-encoded (a space, `#`, `%`, `?`).
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = report
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.description },
                "helpUri": r.help_uri,
                "help": { "text": format!("{} ({})", r.description, r.help_uri) },
                "defaultConfiguration": { "level": r.level.as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .items
        .iter()
        .map(|i| {
            let index = report.rules.iter().position(|r| r.id == i.rule);
            result(report, i, index)
        })
        .collect();
    let doc = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "orgaccess",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": DOCS,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": true,
                "properties": { "command": format!("orgaccess {}", report.command), "verdict": report.headline },
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    super::super::output::to_json(&doc)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn results_name_their_rule_place_and_fingerprint() {
        let r = sample(4);
        let doc: Value = serde_json::from_str(&render(&r)).unwrap();
        let run = &doc["runs"][0];
        assert_eq!(doc["version"], "2.1.0");
        assert_eq!(run["tool"]["driver"]["name"], "orgaccess");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        let first = &results[0];
        assert_eq!(first["ruleId"], "NoEscalation");
        assert_eq!(first["level"], "error");
        let rule = &run["tool"]["driver"]["rules"][first["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], "NoEscalation");
        let loc = &first["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "org/g0.yaml");
        // Line 0 is unknown: no region.
        assert!(loc.get("region").is_none());
        assert_eq!(
            first["partialFingerprints"][FINGERPRINT],
            r.items[0].fingerprint()
        );
        // An item without a file of its own is shown at the default file, without a line.
        let defaulted = results
            .iter()
            .find(|x| {
                x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    == "org/organization.yaml"
            })
            .unwrap();
        assert!(
            defaulted["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
    }

    /// The official SARIF 2.1.0 schema (draft-04), formats checked too.
    pub fn validator() -> jsonschema::Validator {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sarif/sarif-schema-2.1.0.json"
        );
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap()
    }

    #[test]
    fn the_official_schema_accepts_the_report() {
        let v = validator();
        for n in [0, 1, 9] {
            let doc: Value = serde_json::from_str(&render(&sample(n))).unwrap();
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:#?}");
        }
        // The validator does refuse what SARIF does not allow.
        let mut bad: Value = serde_json::from_str(&render(&sample(1))).unwrap();
        bad["runs"][0]["results"][0]["level"] = json!("fatal");
        assert!(!v.is_valid(&bad));
        bad["runs"][0]["results"][0]["level"] = json!("error");
        bad["runs"][0]["tool"]["driver"]["informationUri"] = json!("not a uri");
        assert!(!v.is_valid(&bad));
    }

    #[test]
    fn paths_are_uri_references() {
        assert_eq!(uri("org/a b#1%.yaml"), "org/a%20b%231%25.yaml");
        assert_eq!(uri("org/é.yaml"), "org/%C3%A9.yaml");
    }
}
