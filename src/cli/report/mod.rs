//! Reports for CI: one small model that `check`, `advise` and `diff` project
//! their results into, and one file per format that renders it
//! (`-o markdown|junit|sarif|github|gitlab`, docs/cli.md and docs/ci-recipes.md).
//!
//! An [`Item`] is one result: a rule or finding id, a level, a message, the
//! objects it is about and where their manifest is. A [`Report`] is the
//! items of one run, the objects that passed, and the verdict. The renderers
//! only read it, so every command's formats agree with each other; the exit
//! codes stay the commands' own.

pub mod advise;
pub mod check;
pub mod diff;
pub mod github;
pub mod gitlab;
pub mod junit;
pub mod markdown;
pub mod sarif;

use std::collections::BTreeMap;
use std::path::Path;

use clap::ValueEnum;
use sha2::{Digest, Sha256};

use super::OutputFormat;

/// `-o` of the commands with a verdict: the three formats every command
/// has, and the CI formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned tables and messages for people.
    #[default]
    #[value(alias = "table")]
    Human,
    /// Stable JSON for scripts.
    Json,
    /// The same document as YAML.
    Yaml,
    /// A pull-request comment: verdict, summary table, collapsed details (at most 60,000 bytes).
    Markdown,
    /// JUnit XML: one test case per object or finding, a failure for each that fails.
    Junit,
    /// SARIF 2.1.0, for code scanning (e.g. github/codeql-action/upload-sarif).
    Sarif,
    /// GitHub Actions workflow commands (`::error file=...::...` annotations).
    Github,
    /// A GitLab Code Quality report (`artifacts: reports: codequality`).
    Gitlab,
}

impl ReportFormat {
    /// The format as one of every command's three, when it is one.
    pub fn plain(self) -> Option<OutputFormat> {
        match self {
            ReportFormat::Human => Some(OutputFormat::Human),
            ReportFormat::Json => Some(OutputFormat::Json),
            ReportFormat::Yaml => Some(OutputFormat::Yaml),
            _ => None,
        }
    }

    /// `report` in this CI format; `None` for the three plain formats.
    pub fn render(self, report: &Report) -> Option<String> {
        Some(match self {
            ReportFormat::Markdown => markdown::render(report, markdown::MAX_BYTES),
            ReportFormat::Junit => junit::render(report),
            ReportFormat::Sarif => sarif::render(report),
            ReportFormat::Github => github::render(report),
            ReportFormat::Gitlab => gitlab::render(report),
            _ => return None,
        })
    }
}

/// How serious one result is (SARIF's levels; GitHub's error, warning, notice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Note,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One result: a denial, an invalid document, a warning, a finding, a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The rule or finding id (`NoEscalation`, `administrators-size`, `new-administrator`).
    pub rule: String,
    pub level: Level,
    /// At or above the command's threshold: it fails the run (a JUnit failure).
    pub fails: bool,
    /// What the result is about, for people: `Group acme/editors`, or the
    /// file and document of one that could not be read.
    pub subject: String,
    pub message: String,
    /// `Kind/name` of each object concerned, the main one first.
    pub objects: Vec<String>,
    pub namespace: Option<String>,
    /// The manifest, relative to the working directory when under it.
    pub file: Option<String>,
    /// 1-based line of the document or the problem; 0 when unknown.
    pub line: u64,
    /// What to do about it.
    pub help: Option<String>,
    /// What identifies the result across runs (not its line): the rule, the
    /// namespace, the objects and, where a rule can say several things about
    /// one object, the field.
    pub key: String,
}

impl Item {
    /// A stable fingerprint of [`Item::key`] (SARIF's partialFingerprints,
    /// GitLab's fingerprint): 32 hex digits of its SHA-256.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.key.as_bytes());
        hex::encode(&digest[..16])
    }
}

/// An object that passed, for JUnit's passing test cases.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Passed {
    pub subject: String,
    pub file: Option<String>,
    pub line: u64,
}

/// What a rule or finding id means, for SARIF's `rules[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub description: String,
    /// The page of the documentation that explains it.
    pub help_uri: String,
    pub level: Level,
}

/// The results of one run of `check`, `advise` or `diff`.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `check`, `advise` or `diff`.
    pub command: &'static str,
    /// The verdict in one line, e.g. `2 objects denied in namespace acme`.
    pub headline: String,
    /// The command exits 1 for this run.
    pub failed: bool,
    /// Sorted by [`Report::sort`].
    pub items: Vec<Item>,
    pub passed: Vec<Passed>,
    /// What a passed entry is, one and many (`object allowed`, `objects allowed`).
    pub passed_noun: (&'static str, &'static str),
    /// One per rule id the items name.
    pub rules: Vec<Rule>,
    /// Where results about no manifest are shown (the Organization's
    /// manifest, or the first path read): CI annotations need a file.
    pub default_file: Option<String>,
    /// What to run for everything (named when markdown leaves items out).
    pub full_command: String,
}

impl Report {
    /// Stable order: failing and most serious first, then by file (none
    /// last), line, rule, subject and message.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (b.fails, b.level)
                .cmp(&(a.fails, a.level))
                .then_with(|| (a.file.is_none(), &a.file).cmp(&(b.file.is_none(), &b.file)))
                .then(a.line.cmp(&b.line))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.subject.cmp(&b.subject))
                .then_with(|| a.message.cmp(&b.message))
        });
        self.passed.sort();
        self.passed.dedup();
        self.rules.sort_by(|a, b| a.id.cmp(&b.id));
        self.rules.dedup_by(|a, b| a.id == b.id);
    }

    /// The items of each rule, most serious rule first (for summaries).
    pub fn by_rule(&self) -> Vec<(&str, Level, Vec<&Item>)> {
        let mut groups: BTreeMap<&str, (Level, Vec<&Item>)> = BTreeMap::new();
        for i in &self.items {
            let e = groups.entry(&i.rule).or_insert((i.level, Vec::new()));
            e.0 = e.0.max(i.level);
            e.1.push(i);
        }
        let mut out: Vec<_> = groups
            .into_iter()
            .map(|(rule, (level, items))| (rule, level, items))
            .collect();
        out.sort_by(|a, b| {
            let fails = |v: &Vec<&Item>| v.iter().any(|i| i.fails);
            (fails(&b.2), b.1).cmp(&(fails(&a.2), a.1))
        });
        out
    }

    /// The file to show an item at: its own, else the report's default.
    pub fn file_of<'a>(&'a self, item: &'a Item) -> Option<&'a str> {
        item.file.as_deref().or(self.default_file.as_deref())
    }

    /// How many items fail the run.
    pub fn failures(&self) -> usize {
        self.items.iter().filter(|i| i.fails).count()
    }
}

/// Where the documentation lives; each rule's `helpUri` is a page under it.
pub const DOCS: &str = "https://orgaccess.dev/docs/";

/// `path` as CI tools want it: relative to the working directory when under
/// it, without `./`, with forward slashes.
pub fn relative(path: &str) -> String {
    let p = Path::new(path);
    let rel = std::env::current_dir()
        .ok()
        .filter(|_| p.is_absolute())
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf());
    let s = rel.to_string_lossy().replace('\\', "/");
    let mut s = s.as_str();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    s.to_string()
}

/// At most `max` bytes of `s`, cut at a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report of `n` items about hostile names, for the formats' tests.
    pub fn sample(n: usize) -> Report {
        let mut r = Report {
            command: "check",
            headline: "2 objects denied in namespace acme".into(),
            failed: true,
            default_file: Some("org/organization.yaml".into()),
            full_command: "orgaccess check -o json".into(),
            passed_noun: ("object allowed", "objects allowed"),
            ..Report::default()
        };
        for i in 0..n {
            let name = format!("<script>|x{i}&\"'`*_[a](b)\r\nline:2,3%");
            r.items.push(Item {
                rule: if i % 3 == 0 {
                    "NoEscalation"
                } else {
                    "advice-x"
                }
                .into(),
                level: if i % 3 == 0 {
                    Level::Error
                } else {
                    Level::Warning
                },
                fails: i % 3 == 0,
                subject: format!("Group acme/{name}"),
                message: format!("grants {name} what \u{1b}the requester\u{0} lacks"),
                objects: vec![format!("Group/{name}")],
                namespace: Some("acme".into()),
                file: (i % 4 != 3).then(|| format!("org/g{i}.yaml")),
                line: (i % 5) as u64,
                help: Some("remove it, then <b>apply</b>".into()),
                key: format!("rule|acme|Group/{name}"),
            });
        }
        r.passed.push(Passed {
            subject: "Member acme/ada".into(),
            file: Some("org/ada.yaml".into()),
            line: 1,
        });
        for id in ["NoEscalation", "advice-x"] {
            r.rules.push(Rule {
                id: id.into(),
                description: format!("what {id} refuses"),
                help_uri: format!("{DOCS}rules.md"),
                level: Level::Error,
            });
        }
        r.sort();
        r
    }

    #[test]
    fn paths_are_relative_to_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let abs = cwd.join("org").join("a.yaml");
        assert_eq!(relative(&abs.to_string_lossy()), "org/a.yaml");
        assert_eq!(relative("./././org/a.yaml"), "org/a.yaml");
        assert_eq!(relative("/elsewhere/a.yaml"), "/elsewhere/a.yaml");
        assert_eq!(relative("-"), "-");
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("abc", 3), "abc");
        let t = truncate("ééééé", 6);
        assert!(t.len() <= 6 && t.ends_with('…'), "{t}");
    }

    #[test]
    fn failing_and_serious_items_come_first_in_a_stable_order() {
        let r = sample(12);
        assert!(
            r.items
                .windows(2)
                .all(|w| (w[0].fails, w[0].level) >= (w[1].fails, w[1].level))
        );
        let mut shuffled = r.clone();
        shuffled.items.reverse();
        shuffled.sort();
        assert_eq!(shuffled.items, r.items);
    }

    #[test]
    fn fingerprints_follow_the_key_not_the_line() {
        let r = sample(2);
        let mut moved = r.items[0].clone();
        moved.line += 10;
        assert_eq!(moved.fingerprint(), r.items[0].fingerprint());
        assert_ne!(r.items[0].fingerprint(), r.items[1].fingerprint());
        assert_eq!(r.items[0].fingerprint().len(), 32);
    }
}
