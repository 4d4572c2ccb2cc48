//! `orgaccess diff`: what a change does to access, before it is applied
//! (core [`diff::diff`], docs/diff.md).
//!
//! Two states: `BASE HEAD` (files or directories), a git range
//! (`--git main..HEAD [PATHS]`: the paths at each revision; `main..` is the
//! working tree), or the cluster against manifests (`--cluster PATHS`).
//! With `--as USER`, every object the change creates, updates or deletes is
//! also judged by admission's pipeline as that author ([`crate::judge`]),
//! and the refusals are listed. `--fail-on` turns concerns into exit 1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde::Serialize;

use super::access_map::command::HtmlArgs;
use super::access_map::compare::{self, Changes};
use super::access_map::{AccessMap, html};
use super::check;
use super::identity::{AsArgs, asker};
use super::manifest::{Location, Manifest};
use super::output::Styles;
use super::report::{self, ReportFormat};
use super::source::{self, Org};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::core::change::Def;
use crate::core::diff::{self, AccessDiff, Concern, Direction, PrivilegeChange};
use crate::core::model::Kind;
use crate::core::rules::Operation;
use crate::judge::{self, Plain, Request};

/// At most this many files are read from one git revision, and none larger
/// than [`MAX_GIT_FILE`]: a revision is input like any other.
const MAX_GIT_FILES: usize = 20_000;
const MAX_GIT_FILE: u64 = 8 << 20;

#[derive(Args, Clone, Debug)]
pub struct DiffArgs {
    /// BASE and HEAD (a file or directory each). With --git, paths inside
    /// the repository (default: all of it). With --cluster, the manifests
    /// compared with the cluster.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Compare two git revisions, `BASE..HEAD` (`BASE..` is the working tree).
    #[arg(long, value_name = "BASE..HEAD", conflicts_with = "cluster")]
    pub git: Option<String>,
    /// The base is the cluster's namespace (-n); the head the manifests.
    #[arg(long)]
    pub cluster: bool,
    /// Do not add the built-in groups the operator seeds to manifests.
    #[arg(long)]
    pub no_builtin_groups: bool,
    #[command(flatten)]
    pub who: AsArgs,
    /// Exit 1 when the change raises one of these (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CONCERN")]
    pub fail_on: Vec<FailOn>,
    /// Output format: for people, scripts, or CI (docs/ci-recipes.md).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ReportFormat,
    /// `--html [--html-file FILE]`: the head's access map with the gains
    /// and losses marked (docs/access-map.md), instead of `-o`.
    #[command(flatten)]
    pub html: HtmlArgs,
}

/// What `--fail-on` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Someone becomes an administrator or administrator-equivalent.
    NewAdministrator,
    /// Admission would refuse a change of the pull request for its author (`--as`).
    Escalation,
    /// Any member, key or identity gains any privilege.
    Gain,
    /// A key becomes live, can be public, or lives longer.
    KeyExposure,
    /// A new critical advisor finding.
    Critical,
    /// A new advisor finding of severity warning or critical.
    Warning,
}

impl FailOn {
    fn of(c: Concern) -> FailOn {
        match c {
            Concern::NewAdministrator => FailOn::NewAdministrator,
            Concern::Gain => FailOn::Gain,
            Concern::KeyExposure => FailOn::KeyExposure,
            Concern::Critical => FailOn::Critical,
            Concern::Warning => FailOn::Warning,
        }
    }
}

/// A change of the pull request admission would refuse for `--as`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub operation: &'static str,
    pub kind: &'static str,
    pub name: String,
    /// Where the object is (head's file for a create or update, base's for a delete).
    pub file: String,
    pub line: u64,
    pub rules: Vec<String>,
    pub message: String,
}

/// One namespace's diff.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDiff {
    pub namespace: String,
    #[serde(flatten)]
    pub diff: AccessDiff,
    /// With `--as`: what admission would refuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Vec<Refusal>>,
    /// Where each object's manifest is, by `Kind/name`: the head's, else
    /// the base's (for the CI formats, `report::diff`).
    #[serde(skip)]
    pub locations: BTreeMap<String, Location>,
}

/// The whole answer: every namespace either side holds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    pub base: String,
    pub head: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub namespaces: Vec<NamespaceDiff>,
    /// Every concern raised (whether or not `--fail-on` names it).
    pub concerns: Vec<FailOn>,
    /// The concerns named by `--fail-on` that are raised: exit 1 when any.
    pub failed: Vec<FailOn>,
}

/// One side's manifests (and where they came from).
struct SideManifests {
    label: String,
    manifests: Vec<Manifest>,
    /// Removed when dropped: a git revision written out.
    _dir: Option<tempfile::TempDir>,
}

fn load(paths: &[PathBuf], namespace: &str, what: &str) -> anyhow::Result<Vec<Manifest>> {
    Ok(source::load_strict(paths, namespace, what)?.manifests)
}

fn git(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The manifest files under `paths` at `rev`, written to a new directory.
fn materialize(rev: &str, paths: &[PathBuf]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("orgaccess-diff-")
        .tempdir()
        .context("cannot create a directory for the revision's files")?;
    let mut args: Vec<String> = ["ls-tree", "-r", "-z", "-l", rev, "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let listing = git(&refs)?;
    let mut count = 0;
    for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        // "<mode> blob <object> <size>\t<path>"
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let fields: Vec<&str> = meta.split_whitespace().collect();
        if fields.get(1) != Some(&"blob") {
            continue;
        }
        let manifest_like = [".yaml", ".yml", ".json"].iter().any(|e| path.ends_with(e));
        if !manifest_like {
            continue;
        }
        let size: u64 = fields.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        if size > MAX_GIT_FILE {
            bail!(
                "{rev}:{path}: {size} bytes, above the {MAX_GIT_FILE}-byte limit of a manifest file"
            );
        }
        count += 1;
        if count > MAX_GIT_FILES {
            bail!("{rev}: more than {MAX_GIT_FILES} manifest files under the paths given");
        }
        let rel = Path::new(path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            // Paths relative to the current directory may climb (`../x`):
            // kept inside the written tree under a stand-in name.
            let flat = path.replace("../", "up/");
            write_blob(dir.path(), rev, path, Path::new(&flat))?;
        } else {
            write_blob(dir.path(), rev, path, rel)?;
        }
    }
    Ok(dir)
}

fn write_blob(root: &Path, rev: &str, path: &str, rel: &Path) -> anyhow::Result<()> {
    let bytes = git(&["cat-file", "blob", &format!("{rev}:./{path}")])
        .or_else(|_| git(&["cat-file", "blob", &format!("{rev}:{path}")]))?;
    let target = root.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))
}

/// Rewrites a written-out revision's file names back to the repository's.
fn relabel(manifests: &mut [Manifest], dir: &Path) {
    let prefix = format!("{}/", dir.display());
    for m in manifests {
        if let Some(rest) = m.loc.file.strip_prefix(&prefix) {
            m.loc.file = rest.to_string();
        }
    }
}

fn git_side(rev: &str, paths: &[PathBuf], namespace: &str) -> anyhow::Result<SideManifests> {
    if rev.is_empty() {
        return Ok(SideManifests {
            label: "working tree".into(),
            manifests: load(paths, namespace, "working tree's manifests")?,
            _dir: None,
        });
    }
    let dir = materialize(rev, paths)?;
    let mut manifests = if std::fs::read_dir(dir.path())?.next().is_none() {
        Vec::new()
    } else {
        load(
            &[dir.path().to_path_buf()],
            namespace,
            &format!("manifests at {rev}"),
        )?
    };
    relabel(&mut manifests, dir.path());
    Ok(SideManifests {
        label: rev.to_string(),
        manifests,
        _dir: Some(dir),
    })
}

fn key(m: &Manifest) -> (Kind, String, String) {
    (m.kind(), m.namespace.clone(), m.name.clone())
}

/// Every object the head creates, updates or deletes in `namespace`,
/// judged as `who` against the head's organization with the object as it
/// was at the base (as `orgaccess check --existing` judges).
fn refusals(
    base: &[Manifest],
    head: &[Manifest],
    head_org: &Org,
    base_org: Option<&Org>,
    namespace: &str,
    who: &AsArgs,
) -> Vec<Refusal> {
    let identity = who.identity();
    let asker = asker(identity.as_ref());
    let now = Timestamp::now();
    let base_objs: BTreeMap<_, &Manifest> = base
        .iter()
        .filter(|m| m.namespace == namespace)
        .map(|m| (key(m), m))
        .collect();
    let head_objs: BTreeMap<_, &Manifest> = head
        .iter()
        .filter(|m| m.namespace == namespace)
        .map(|m| (key(m), m))
        .collect();
    let mut known = Plain::new(head_org.state.clone());
    let mut out = Vec::new();
    for (k, m) in &head_objs {
        let new = m.object.def();
        let old: Option<Def> = base_objs.get(k).map(|b| b.object.def()).or_else(|| {
            // A built-in group the base did not list is the seeded one.
            base_org
                .and_then(|o| o.state.groups.get(&m.name))
                .filter(|_| m.kind() == Kind::Group)
                .map(|g| Def::Group((*(*g)).clone()))
        });
        if old.as_ref() == Some(&new) {
            continue;
        }
        // Judged as `orgaccess check --existing` judges one object.
        let verdict = known.before(&new, &m.name, old.as_ref(), |known| {
            check::judge_manifest(known, asker, m, &new, old.as_ref(), now)
        });
        if let check::Verdict::Judged(_, operation, j) = verdict
            && !j.allowed()
        {
            out.push(refusal(m, operation, &j));
        }
    }
    for (k, m) in &base_objs {
        if head_objs.contains_key(k) {
            continue;
        }
        let old = m.object.def();
        // Judged against the head with the deleted object still in it.
        let j = known.before(&old, &m.name, Some(&old), |known| {
            judge::judge(
                known,
                asker,
                &Request {
                    kind: m.kind(),
                    operation: Operation::Delete,
                    namespace,
                    name: &m.name,
                    old: Some(&old),
                    new: None,
                    stored_key: None,
                    mutated: false,
                },
                now,
            )
        });
        if !j.allowed() {
            out.push(refusal(m, Operation::Delete, &j));
        }
    }
    out
}

fn refusal(m: &Manifest, operation: Operation, j: &judge::Judgement) -> Refusal {
    let mut rules: Vec<String> = j.violations.iter().map(|v| v.rule.to_string()).collect();
    rules.sort_unstable();
    rules.dedup();
    Refusal {
        operation: judge::operation_name(operation),
        kind: m.kind().as_str(),
        name: m.name.clone(),
        file: m.loc.file.clone(),
        line: m.loc.line,
        rules,
        message: j.message.clone().unwrap_or_default(),
    }
}

/// Builds the report; `Err` when a side cannot be read.
pub async fn report(args: &DiffArgs, cluster: &ClusterArgs) -> anyhow::Result<DiffReport> {
    Ok(compare(args, cluster).await?.0)
}

/// The report and the head's organizations (what `--html` draws).
pub async fn compare(
    args: &DiffArgs,
    cluster: &ClusterArgs,
) -> anyhow::Result<(DiffReport, BTreeMap<String, Org>)> {
    let ns_default = cluster.namespace.as_deref().unwrap_or("default");
    let builtins = !args.no_builtin_groups;
    let (base, head, base_orgs): (SideManifests, SideManifests, Option<BTreeMap<String, Org>>) =
        if let Some(range) = &args.git {
            let Some((b, h)) = range.split_once("..") else {
                bail!("--git takes BASE..HEAD (e.g. main..HEAD, or main.. for the working tree)");
            };
            if b.is_empty() {
                bail!("--git {range}: name the base revision");
            }
            let paths = if args.paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                args.paths.clone()
            };
            (
                git_side(b, &paths, ns_default)?,
                git_side(h, &paths, ns_default)?,
                None,
            )
        } else if args.cluster {
            if args.paths.is_empty() {
                bail!("--cluster compares the cluster with manifests: give their paths");
            }
            let (org, _) = source::from_cluster(cluster).await?;
            let ns = org.namespace.clone();
            let head = SideManifests {
                label: args
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                manifests: load(&args.paths, &ns, "manifests")?,
                _dir: None,
            };
            (
                SideManifests {
                    label: format!("cluster namespace {ns}"),
                    manifests: Vec::new(),
                    _dir: None,
                },
                head,
                Some(BTreeMap::from([(ns, org)])),
            )
        } else {
            let [b, h] = args.paths.as_slice() else {
                bail!(
                    "give BASE and HEAD (files or directories), or --git BASE..HEAD, or --cluster PATHS"
                );
            };
            (
                SideManifests {
                    label: b.display().to_string(),
                    manifests: load(std::slice::from_ref(b), ns_default, "base manifests")?,
                    _dir: None,
                },
                SideManifests {
                    label: h.display().to_string(),
                    manifests: load(std::slice::from_ref(h), ns_default, "head manifests")?,
                    _dir: None,
                },
                None,
            )
        };
    if args.cluster && args.who.as_user.is_some() {
        bail!(
            "--as judges the objects a change creates, updates and deletes from manifests on both sides; with --cluster, use `orgaccess check --as` on the manifests"
        );
    }
    let base_orgs = base_orgs.unwrap_or_else(|| source::states(&base.manifests, builtins));
    let head_orgs = source::states(&head.manifests, builtins);
    let mut namespaces: BTreeSet<&String> = base_orgs.keys().chain(head_orgs.keys()).collect();
    if let Some(ns) = &cluster.namespace {
        namespaces.retain(|n| *n == ns);
    }
    let now = Timestamp::now();
    let empty = crate::core::model::OrgState::default();
    let mut out = Vec::new();
    for ns in namespaces {
        let b = base_orgs.get(ns);
        let h = head_orgs.get(ns);
        let d = diff::diff(
            b.map_or(&empty, |o| &o.state),
            h.map_or(&empty, |o| &o.state),
            now,
        );
        let refused = args.who.as_user.is_some().then(|| match h {
            Some(h) => refusals(&base.manifests, &head.manifests, h, b, ns, &args.who),
            None => Vec::new(),
        });
        let mut locations = b.map(|o| o.locations.clone()).unwrap_or_default();
        locations.extend(h.iter().flat_map(|o| o.locations.clone()));
        out.push(NamespaceDiff {
            namespace: ns.clone(),
            diff: d,
            refused,
            locations,
        });
    }
    let mut concerns: BTreeSet<FailOn> = out
        .iter()
        .flat_map(|n| n.diff.concerns())
        .map(FailOn::of)
        .collect();
    if out
        .iter()
        .any(|n| n.refused.as_ref().is_some_and(|r| !r.is_empty()))
    {
        concerns.insert(FailOn::Escalation);
    }
    let failed = args
        .fail_on
        .iter()
        .copied()
        .filter(|f| concerns.contains(f))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let report = DiffReport {
        base: base.label,
        head: head.label,
        author: args.who.as_user.clone(),
        namespaces: out,
        concerns: concerns.into_iter().collect(),
        failed,
    };
    Ok((report, head_orgs))
}

pub async fn run(args: DiffArgs, cluster: &ClusterArgs) -> i32 {
    if args.fail_on.contains(&FailOn::Escalation) && args.who.as_user.is_none() {
        return fail(&anyhow::anyhow!(
            "--fail-on escalation needs --as USER: the author whose changes admission judges"
        ));
    }
    let (report, heads) = match compare(&args, cluster).await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if args.html.wanted() {
        if let Err(e) = html_page(&report, heads, &args.html) {
            return fail(&e);
        }
    } else {
        match args.output.plain() {
            Some(format) => emit(&format.render(&report, || human(&report, Styles::stdout()))),
            None => {
                let r = report::diff::report(&report, &args.fail_on, full_command(&args));
                emit(&args.output.render(&r).unwrap_or_default());
            }
        }
    }
    if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// `--html`: the head's access map with the diff marked (one namespace).
fn html_page(
    report: &DiffReport,
    mut heads: BTreeMap<String, Org>,
    out: &HtmlArgs,
) -> anyhow::Result<()> {
    let [nd] = report.namespaces.as_slice() else {
        let names: Vec<&str> = report
            .namespaces
            .iter()
            .map(|n| n.namespace.as_str())
            .collect();
        bail!(
            "--html draws one namespace; the change touches {} ({}): choose one with -n",
            names.len(),
            names.join(", ")
        );
    };
    let head = heads.remove(&nd.namespace).unwrap_or_else(|| Org {
        namespace: nd.namespace.clone(),
        state: crate::core::model::OrgState::default(),
        explicit_namespace: true,
        implicit_builtins: Vec::new(),
        key_last_used: BTreeMap::new(),
        locations: BTreeMap::new(),
    });
    let subtitle = format!("Compared: {} \u{2192} {}", report.base, report.head);
    let mut map = AccessMap::build(&head, &subtitle, Timestamp::now());
    let refused = nd.refused.as_ref().map(|list| {
        list.iter()
            .map(|r| {
                format!(
                    "{} {} {} ({}:{}): {}",
                    r.operation, r.kind, r.name, r.file, r.line, r.message
                )
            })
            .collect()
    });
    let changes = Changes {
        base: report.base.clone(),
        head: report.head.clone(),
        refused,
        ..Changes::default()
    };
    compare::mark_changes(&mut map, &nd.diff, changes);
    out.write(&html::render(&map))
}

/// This run's command line with `-o json`, for what markdown leaves out.
fn full_command(args: &DiffArgs) -> String {
    let mut parts = vec!["orgaccess diff -o json".to_string()];
    if let Some(range) = &args.git {
        parts.push(format!("--git {range}"));
    }
    if args.cluster {
        parts.push("--cluster".into());
    }
    parts.extend(args.paths.iter().map(|p| p.display().to_string()));
    parts.join(" ")
}

/// One privilege change in a line: `Service/Domain: before → after`.
pub fn change_text(c: &PrivilegeChange) -> String {
    change_line(c).trim().replace("  (", " (")
}

fn change_line(c: &PrivilegeChange) -> String {
    let what = |s: &Option<crate::core::privilege::PrivilegeSpec>| {
        s.as_ref().map_or("nothing".to_string(), |s| {
            s.to_string()
                .split_once(": ")
                .map_or(s.to_string(), |(_, l)| l.to_string())
        })
    };
    let (sign, causes) = match c.direction {
        Direction::Gained => ("+", &c.granted_by),
        Direction::Lost => ("-", &c.was_granted_by),
        Direction::Changed => ("~", &c.granted_by),
    };
    let by = if causes.is_empty() {
        String::new()
    } else {
        format!(
            "  ({} {})",
            if c.direction == Direction::Lost {
                "was from"
            } else {
                "from"
            },
            causes.join(", ")
        )
    };
    format!(
        "  {sign} {}/{}: {} → {}{by}\n",
        c.service,
        c.domain,
        what(&c.before),
        what(&c.after)
    )
}

/// The report for people.
pub fn human(r: &DiffReport, s: Styles) -> String {
    let mut out = format!("{} → {}\n", r.base, r.head);
    for n in &r.namespaces {
        out.push_str(&format!(
            "\n{}\n",
            s.bold(&format!("namespace {}", n.namespace))
        ));
        if n.diff.is_empty() && n.refused.as_ref().is_none_or(Vec::is_empty) {
            out.push_str("  no change to access\n");
            continue;
        }
        for notice in &n.diff.notices {
            let line = notice.message();
            let line = if notice.is_new_administrator() {
                s.error(&line)
            } else {
                s.warn(&line)
            };
            out.push_str(&format!("  ! {line}\n"));
        }
        for p in &n.diff.principals {
            let state = match (p.in_base, p.in_head) {
                (false, true) => " (new)",
                (true, false) => " (removed)",
                _ => "",
            };
            out.push_str(&format!("{}{state}\n", s.bold(&p.principal.to_string())));
            for c in &p.changes {
                out.push_str(&change_line(c));
            }
        }
        for f in &n.diff.findings.appeared {
            out.push_str(&format!(
                "  finding appears: [{:?}] {} {}\n",
                f.severity, f.id, f.message
            ));
        }
        for f in &n.diff.findings.resolved {
            out.push_str(&format!(
                "  finding goes away: [{:?}] {} {}\n",
                f.severity, f.id, f.message
            ));
        }
        if let (Some(refused), Some(author)) = (&n.refused, &r.author) {
            for x in refused {
                out.push_str(&format!(
                    "  {} {} {} {}/{}: admission would refuse it for {author}: {}\n",
                    s.error("refused"),
                    x.file,
                    x.operation,
                    x.kind,
                    x.name,
                    x.message
                ));
            }
        }
    }
    let concerns: Vec<String> = r
        .concerns
        .iter()
        .map(|c| {
            c.to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_string())
        })
        .collect();
    out.push_str(&format!(
        "\nconcerns: {}\n",
        if concerns.is_empty() {
            "none".to_string()
        } else {
            concerns.join(", ")
        }
    ));
    out
}
