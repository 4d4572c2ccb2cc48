//! `orgaccess check PATHS...`: the admission rules, offline, for CI.
//!
//! The manifests of one run form one organization per namespace. Each object
//! is judged by the pipeline the webhook runs ([`crate::judge`]) as a CREATE:
//! what is known before it is every *other* object of its namespace (plus
//! the built-in groups the operator seeds, see [`super::source`]), as the
//! webhook's cache would hold, and the object arrives as the change's new
//! object. A denial is worded by
//! [`crate::core::rules::denial_message`], so CI prints what `kubectl apply`
//! would.
//!
//! Two cases are UPDATEs, as in the cluster: an object that `--existing`
//! manifests (the organization as it is, e.g. the base branch) already hold,
//! and a built-in group kept in Git under its seeded name with its
//! `spec.builtIn` (the operator created it with the Organization). The
//! judged state then holds the object's current version, as the webhook's
//! cache does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::identity::{AsArgs, Identity, asker};
use super::manifest::{self, Loaded, Location, Manifest, Object, Problem};
use super::output::{OutputFormat, Styles};
use super::report::{self, ReportFormat};
use super::source::{self, Org};
use super::{ClusterArgs, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, emit, emit_err};
use crate::core::change::Def;
use crate::core::model::{GroupDef, Kind, OrgState};
use crate::core::rules::Operation;
use crate::judge::{self, Asker, Judgement, Plain};

#[derive(Args, Clone, Debug)]
pub struct CheckArgs {
    /// Files, directories (searched recursively for *.yaml, *.yml, *.json) or
    /// `-` for standard input (e.g. `kustomize build | orgaccess check -`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Succeed when the paths hold no orgaccess.dev objects (by default that
    /// is an error: a CI job pointed at the wrong directory must not pass).
    #[arg(long)]
    pub allow_empty: bool,
    // Without --as, the requester is a trusted platform principal
    // (CatalogValidity and AdministratorsProtected only, docs/rules.md).
    #[command(flatten)]
    pub who: AsArgs,
    /// Output format: for people, scripts, or CI (docs/ci-recipes.md).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ReportFormat,
    /// Also list allowed objects, skipped documents and the built-in groups added.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Do not add the built-in groups the operator seeds.
    #[arg(long)]
    pub no_builtin_groups: bool,
    /// Manifests of the organization as it already is (e.g. a checkout of
    /// the base branch). They are the state the PATHS objects are checked
    /// against, and are not checked themselves; an object of PATHS found
    /// there is checked as an UPDATE of it. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub existing: Vec<PathBuf>,
}

/// A built-in group kept in Git, under its seeded name and with its
/// `spec.builtIn`, already exists once its Organization does: the operator
/// seeded it, so applying the manifest updates the seeded group. It is
/// checked as that update (AdministratorsProtected then refuses edits of Administrators'
/// privileges); any other group with `spec.builtIn` is a create, refused.
fn seeded_original(m: &Manifest, state: &OrgState, builtins: bool) -> Option<GroupDef> {
    let Object::Group(g) = &m.object else {
        return None;
    };
    let b = g.spec.built_in?;
    (builtins && state.org.is_some() && b.object_name() == m.name).then(|| GroupDef::seeded(b))
}

/// One line of the JSON report. Allowed objects have one entry with `rule`,
/// `field` and `message` null; a denied object has one entry per violation,
/// each with the whole denial `message` (the webhook's text) and its own
/// `detail`; an invalid document has one entry per problem.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub file: String,
    pub document: usize,
    pub line: u64,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// CREATE, or UPDATE for an object of `--existing` or a built-in group
    /// kept in Git under its seeded name.
    pub operation: Option<&'static str>,
    pub allowed: bool,
    pub rule: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
    pub detail: Option<String>,
    /// For an allowed object, what the webhook would warn about
    /// (`core::warnings`, kubectl's `Warning:` lines); empty otherwise.
    pub warnings: Vec<String>,
}

impl Finding {
    fn of(m: &Manifest, op: Operation, allowed: bool) -> Finding {
        Finding {
            file: m.loc.file.clone(),
            document: m.loc.document,
            line: m.loc.line,
            kind: Some(m.kind().to_string()),
            namespace: Some(m.namespace.clone()),
            name: Some(m.name.clone()),
            operation: Some(judge::operation_name(op)),
            allowed,
            rule: None,
            field: None,
            message: None,
            detail: None,
            warnings: Vec::new(),
        }
    }

    fn invalid(p: &Problem) -> Finding {
        Finding {
            file: p.loc.file.clone(),
            document: p.loc.document,
            line: p.loc.line,
            kind: p.kind.clone(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            operation: None,
            allowed: false,
            rule: Some(p.rule.to_string()),
            field: p.field.clone(),
            message: Some(p.message.clone()),
            detail: None,
            warnings: Vec::new(),
        }
    }

    fn unreadable(path: &str, why: &str) -> Finding {
        Finding {
            file: path.to_string(),
            document: 0,
            line: 0,
            kind: None,
            namespace: None,
            name: None,
            operation: None,
            allowed: false,
            rule: Some(manifest::INVALID_MANIFEST.into()),
            field: None,
            message: Some(format!("cannot read: {why}")),
            detail: None,
            warnings: Vec::new(),
        }
    }
}

/// The verdict on one document.
#[derive(Debug)]
pub enum Verdict<'a> {
    Judged(&'a Manifest, Operation, Judgement),
    Invalid(&'a Problem),
}

impl Verdict<'_> {
    fn loc(&self) -> &Location {
        match self {
            Verdict::Judged(m, _, _) => &m.loc,
            Verdict::Invalid(p) => &p.loc,
        }
    }

    fn denied(&self) -> bool {
        matches!(self, Verdict::Judged(_, _, j) if !j.allowed())
    }

    /// Its lines of the JSON report.
    fn findings(&self) -> Vec<Finding> {
        match self {
            Verdict::Judged(m, op, j) if j.allowed() => vec![Finding {
                warnings: j.warnings.clone(),
                ..Finding::of(m, *op, true)
            }],
            Verdict::Judged(m, op, j) => j
                .violations
                .iter()
                .map(|x| Finding {
                    rule: Some(x.rule.to_string()),
                    field: Some(x.field.clone()),
                    message: j.message.clone(),
                    detail: Some(x.message.clone()),
                    ..Finding::of(m, *op, false)
                })
                .collect(),
            Verdict::Invalid(p) => vec![Finding::invalid(p)],
        }
    }
}

/// Identifies an object across the checked and the existing manifests (one
/// Organization per namespace, whatever its name).
fn key(m: &Manifest) -> (Kind, String, String) {
    let name = match m.object {
        Object::Organization(_) => String::new(),
        _ => m.name.clone(),
    };
    (m.kind(), m.namespace.clone(), name)
}

/// What one run checks, and against what.
#[derive(Debug)]
pub struct Inputs {
    /// The checked manifests; the problems and unreadable paths of both sets.
    pub loaded: Loaded,
    /// The `--existing` version of each checked object that has one.
    pub before: BTreeMap<(Kind, String, String), Def>,
    /// Each namespace's organization: the existing objects, replaced by
    /// the checked ones.
    pub orgs: BTreeMap<String, Org>,
}

impl Inputs {
    /// Reads `paths` and `existing`; documents that name no namespace are in `namespace`.
    pub fn read(
        paths: &[PathBuf],
        existing: &[PathBuf],
        namespace: &str,
        builtins: bool,
    ) -> Inputs {
        let mut loaded = manifest::load(paths, namespace);
        let existing = if existing.is_empty() {
            Loaded::default()
        } else {
            manifest::load(existing, namespace)
        };
        let checked: BTreeSet<_> = loaded.manifests.iter().map(key).collect();
        let before = existing
            .manifests
            .iter()
            .filter(|m| checked.contains(&key(m)))
            .map(|m| (key(m), m.object.def()))
            .collect();
        let mut all: Vec<Manifest> = existing
            .manifests
            .into_iter()
            .filter(|m| !checked.contains(&key(m)))
            .collect();
        all.extend(loaded.manifests.iter().cloned());
        loaded.problems.extend(existing.problems);
        loaded.unreadable.extend(existing.unreadable);
        Inputs {
            orgs: source::states(&all, builtins),
            loaded,
            before,
        }
    }

    /// Judges every checked object with the webhook's pipeline, as `asker`;
    /// with the invalid documents, in file order.
    pub fn verdicts(&self, asker: Asker, builtins: bool) -> Vec<Verdict<'_>> {
        let now = Timestamp::now();
        let mut known: BTreeMap<&str, Plain> = self
            .orgs
            .iter()
            .map(|(ns, org)| (ns.as_str(), Plain::new(org.state.clone())))
            .collect();
        let mut verdicts: Vec<Verdict> = Vec::new();
        for m in &self.loaded.manifests {
            let Some(known) = known.get_mut(m.namespace.as_str()) else {
                continue;
            };
            let old = match self.before.get(&key(m)) {
                Some(def) => Some(def.clone()),
                None => {
                    seeded_original(m, &self.orgs[&m.namespace].state, builtins).map(Def::Group)
                }
            };
            let new = m.object.def();
            // The organization before this object: every other object, and
            // its existing version (the state the webhook's cache would hold).
            verdicts.push(known.before(&new, &m.name, old.as_ref(), |known| {
                judge_manifest(known, asker, m, &new, old.as_ref(), now)
            }));
        }
        verdicts.extend(self.loaded.problems.iter().map(Verdict::Invalid));
        verdicts.sort_by(|a, b| a.loc().cmp(b.loc()));
        verdicts
    }
}

/// One object, created (or updating `old`) in what is `known` (also
/// `orgaccess diff --as`, for each object a change creates or updates).
pub fn judge_manifest<'a>(
    known: &Plain,
    asker: Asker,
    m: &'a Manifest,
    new: &Def,
    old: Option<&Def>,
    now: Timestamp,
) -> Verdict<'a> {
    let operation = if old.is_some() {
        Operation::Update
    } else {
        Operation::Create
    };
    let request = judge::Request {
        kind: m.kind(),
        operation,
        namespace: &m.namespace,
        name: &m.name,
        old,
        new: Some(new),
        stored_key: None,
        mutated: false,
    };
    Verdict::Judged(m, operation, judge::judge(known, asker, &request, now))
}

/// One line per refused object or invalid document: what `check` prints for it.
pub fn refusals(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Judged(m, _, j) if !j.allowed() => Some(format!(
                "{} {}: {}",
                m.kind(),
                m.qualified(),
                j.message.as_deref().unwrap_or_default()
            )),
            Verdict::Judged(..) => None,
            Verdict::Invalid(p) => Some(problem_line(p)),
        })
        .collect()
}

/// The JSON report's lines: unreadable paths, then each verdict's.
pub fn findings(inputs: &Inputs, verdicts: &[Verdict]) -> Vec<Finding> {
    let unreadable = inputs
        .loaded
        .unreadable
        .iter()
        .map(|(path, e)| Finding::unreadable(path, e));
    unreadable
        .chain(verdicts.iter().flat_map(Verdict::findings))
        .collect()
}

/// Checks `args.paths`; documents that name no namespace are in `-n` (default `default`).
pub fn run(args: CheckArgs, cluster: &ClusterArgs) -> i32 {
    let namespace = cluster.namespace.as_deref().unwrap_or("default");
    let builtins = !args.no_builtin_groups;
    let inputs = Inputs::read(&args.paths, &args.existing, namespace, builtins);
    let identity = args.who.identity();
    let verdicts = inputs.verdicts(asker(identity.as_ref()), builtins);
    if args.verbose {
        emit_err(&notes(&inputs, identity.as_ref()));
    }
    let code = exit_code(&args, &inputs, &verdicts);
    match args.output.plain() {
        Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) => {
            emit(&format.render(&findings(&inputs, &verdicts), String::new));
        }
        Some(OutputFormat::Human) => emit(&human(&inputs, &verdicts, args.verbose)),
        None => {
            let mut full = format!("orgaccess check -o json {}", shown(&args.paths));
            for e in &args.existing {
                full.push_str(&format!(" --existing {}", e.display()));
            }
            let r = report::check::report(&inputs, &verdicts, code != EXIT_OK, full);
            emit(&args.output.render(&r).unwrap_or_default());
        }
    }
    code
}

/// The paths as given, for a command line to repeat.
fn shown(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" ")
}

/// The denied objects and the invalid documents (a document may have several problems).
fn tally(verdicts: &[Verdict]) -> (usize, usize) {
    let denied = verdicts.iter().filter(|v| v.denied()).count();
    let invalid = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Invalid(p) => Some((&p.loc.file, p.loc.document, p.loc.line)),
            _ => None,
        })
        .map(|(f, d, l)| (f, d, if d > 0 { 0 } else { l }))
        .collect::<BTreeSet<_>>()
        .len();
    (denied, invalid)
}

fn exit_code(args: &CheckArgs, inputs: &Inputs, verdicts: &[Verdict]) -> i32 {
    let (denied, invalid) = tally(verdicts);
    if !inputs.loaded.unreadable.is_empty() {
        EXIT_ERROR
    } else if verdicts.is_empty() && !args.allow_empty {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        emit_err(&format!(
            "error: nothing was checked: no orgaccess.dev objects in {} (pass --allow-empty to accept that)\n",
            paths.join(", ")
        ));
        EXIT_ERROR
    } else if denied + invalid > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// `-v`'s notes on standard error: who checks, what was skipped or added.
fn notes(inputs: &Inputs, identity: Option<&Identity>) -> String {
    let note = Styles::stderr().dim("note:");
    let who = match identity {
        None => "as a trusted platform principal (CatalogValidity and AdministratorsProtected; pass --as USER for the requester rules)"
            .to_string(),
        Some(id) => format!("as user '{}' (groups: {})", id.user, id.groups.join(", ")),
    };
    let mut out = format!("{note} checking {who}\n");
    for (loc, what) in &inputs.loaded.ignored {
        out.push_str(&format!(
            "{note} {loc}: skipped {what} (not an orgaccess.dev kind)\n"
        ));
    }
    for org in inputs.orgs.values() {
        if org.state.org.is_none() {
            out.push_str(&format!(
                "{note} namespace {} has no Organization: Custom grants on its resources cannot be checked\n",
                org.namespace
            ));
        }
        if !org.implicit_builtins.is_empty() {
            out.push_str(&format!(
                "{note} namespace {}: added the built-in groups the operator seeds: {}\n",
                org.namespace,
                org.implicit_builtins.join(", ")
            ));
        }
    }
    out
}

/// The human report: unreadable paths, then each verdict (allowed objects
/// only with `verbose`, or when they carry warnings), then the summary.
fn human(inputs: &Inputs, verdicts: &[Verdict], verbose: bool) -> String {
    let s = Styles::stdout();
    let mut out = String::new();
    for (path, e) in &inputs.loaded.unreadable {
        out.push_str(&format!("{}: cannot read: {e}\n", s.error(path)));
    }
    for v in verdicts {
        match v {
            Verdict::Judged(m, op, j) if j.allowed() => {
                if verbose {
                    let update = if *op == Operation::Update {
                        " (update)"
                    } else {
                        ""
                    };
                    out.push_str(&format!(
                        "{}: {} {} {}{update}\n",
                        s.bold(&m.loc.to_string()),
                        m.kind(),
                        m.qualified(),
                        s.ok("allowed"),
                    ));
                }
                for w in &j.warnings {
                    out.push_str(&format!(
                        "{}: {} {} {}: {w}\n",
                        s.warn(&m.loc.to_string()),
                        s.warn("Warning:"),
                        m.kind(),
                        m.qualified(),
                    ));
                }
            }
            Verdict::Judged(m, _, j) => out.push_str(&format!(
                "{}: {}\n",
                s.error(&m.loc.to_string()),
                j.message.as_deref().unwrap_or_default()
            )),
            Verdict::Invalid(p) => out.push_str(&format!(
                "{}: {}\n",
                s.error(&p.loc.to_string()),
                problem_line(p)
            )),
        }
    }
    out.push_str(&summary(verdicts, inputs.loaded.unreadable.len(), s));
    out
}

/// An invalid document's line: what it is, the field when the message does
/// not name it, the message.
fn problem_line(p: &Problem) -> String {
    let what = match (&p.kind, &p.namespace, &p.name) {
        (Some(k), Some(ns), Some(n)) => format!("{k} {ns}/{n}: "),
        (Some(k), None, Some(n)) => format!("{k} {n}: "),
        _ => String::new(),
    };
    let field = match &p.field {
        Some(f) if p.rule == manifest::SCHEMA && !p.message.contains(f.as_str()) => {
            format!("{f}: ")
        }
        _ => String::new(),
    };
    format!("{what}{field}{}", p.message)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The verdict line: what was checked, and how it went.
pub(super) fn summary(verdicts: &[Verdict], unreadable: usize, s: Styles) -> String {
    let (denied, invalid) = tally(verdicts);
    let judged: Vec<(&Manifest, &Judgement)> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Judged(m, _, j) => Some((*m, j)),
            Verdict::Invalid(_) => None,
        })
        .collect();
    if verdicts.is_empty() && unreadable == 0 {
        return "no orgaccess.dev objects found\n".into();
    }
    let namespaces: BTreeSet<&str> = judged.iter().map(|(m, _)| m.namespace.as_str()).collect();
    let ns = match namespaces.len() {
        0 => String::new(),
        1 => format!(" in namespace {}", namespaces.iter().next().unwrap_or(&"")),
        n => format!(
            " in {n} namespaces ({})",
            namespaces.iter().copied().collect::<Vec<_>>().join(", ")
        ),
    };
    let mut parts = Vec::new();
    if denied == 0 && invalid == 0 && unreadable == 0 {
        parts.push(s.ok("all allowed"));
    } else {
        parts.push(format!("{} allowed", judged.len() - denied));
        if denied > 0 {
            parts.push(s.error(&format!("{denied} denied")));
        }
        if invalid > 0 {
            parts.push(s.error(&plural(invalid, "invalid document", "invalid documents")));
        }
        if unreadable > 0 {
            parts.push(s.error(&plural(unreadable, "unreadable path", "unreadable paths")));
        }
    }
    let warned: usize = judged.iter().map(|(_, j)| j.warnings.len()).sum();
    if warned > 0 {
        parts.push(s.warn(&plural(warned, "warning", "warnings")));
    }
    format!(
        "checked {}{ns}: {}\n",
        plural(judged.len(), "object", "objects"),
        parts.join(", ")
    )
}
