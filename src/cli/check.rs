//! `orgaccess check PATHS...`: the admission rules, offline, for CI.
//!
//! The manifests of one run form one organization per namespace. Each object
//! is checked as a CREATE exactly as the webhook checks one: the state holds
//! every *other* object of its namespace (plus the built-in groups the
//! operator seeds, see [`super::source`]), the object arrives as
//! `change.new`, and [`rules::check`] decides. A denial is worded by
//! [`rules::denial_message`], so CI prints what `kubectl apply` would.
//!
//! Two cases are UPDATEs, as in the cluster: an object that `--existing`
//! manifests (the organization as it is, e.g. the base branch) already hold,
//! and a built-in group kept in Git under its seeded name with its
//! `spec.builtIn` (the operator created it with the Organization). The state
//! then holds the object's current version, as the webhook's cache does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::manifest::{self, Location, Manifest, Object, Problem};
use super::output::OutputFormat;
use super::output::Styles;
use super::source;
use super::{ClusterArgs, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, emit, emit_err};
use crate::core::effective::{Grantees, requester_view, resolve_grantees};
use crate::core::model::{ApiKeyDef, GroupDef, Kind, MemberDef, OrgDef, OrgState};
use crate::core::rules::{self, Change, Operation, Requester, Violation};
use crate::core::warnings;

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
    /// Check as this Kubernetes user (mapped to Members through their
    /// spec.subjects), applying the requester rules (docs/rules.md). Without it the
    /// requester is a trusted platform principal (CatalogValidity and AdministratorsProtected only).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// A Kubernetes group of the --as user. Repeatable.
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
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

/// Who the rules judge: a trusted principal, or a Kubernetes identity.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn new(user: Option<String>, groups: Vec<String>) -> Identity {
        let Some(user) = user else {
            return Identity::default();
        };
        // What the API server adds to an impersonated (or any authenticated) identity.
        let mut all = groups;
        let mut implied = vec!["system:authenticated".to_string()];
        if let Some(rest) = user.strip_prefix("system:serviceaccount:")
            && let Some((ns, _)) = rest.split_once(':')
        {
            implied.push("system:serviceaccounts".into());
            implied.push(format!("system:serviceaccounts:{ns}"));
        }
        for g in implied {
            if !all.contains(&g) {
                all.push(g);
            }
        }
        Identity {
            user: Some(user),
            groups: all,
        }
    }

    /// The requester as the webhook would see it in this state.
    pub fn requester(&self, state: &OrgState, grantees: &Grantees, now: Timestamp) -> Requester {
        let Some(user) = &self.user else {
            return Requester::Trusted;
        };
        let view = requester_view(state, grantees, user, &self.groups, now);
        crate::core::change::requester(user, &view)
    }
}

/// An object's core view, owned (the model the webhook judges with too).
pub use crate::core::change::Def;

/// The core view of a manifest's object.
pub fn def_of(o: &Object) -> Def {
    match o {
        Object::Organization(o) => Def::Organization(OrgDef::from(o)),
        Object::Group(o) => Def::Group(GroupDef::from(o)),
        Object::Member(o) => Def::Member(MemberDef::from(o)),
        Object::ApiKey(o) => Def::ApiKey(ApiKeyDef::from(o)),
    }
}

/// Checks the creation of `def` (named `name`) into `state`, which must not hold it.
pub fn check_create(
    state: &OrgState,
    name: &str,
    def: &Def,
    identity: &Identity,
    now: Timestamp,
) -> Vec<Violation> {
    check_change(state, name, None, def, identity, now)
}

/// Checks a create (`old` is `None`) or an update of `old` to `new` in
/// `state`, which holds `old` (as the webhook's cache does) and not `new`.
pub fn check_change(
    state: &OrgState,
    name: &str,
    old: Option<&Def>,
    new: &Def,
    identity: &Identity,
    now: Timestamp,
) -> Vec<Violation> {
    check_with(
        state,
        &resolve_grantees(state),
        name,
        old,
        new,
        identity,
        now,
    )
}

/// [`check_change`] with the state's grantees already resolved.
fn check_with(
    state: &OrgState,
    grantees: &Grantees,
    name: &str,
    old: Option<&Def>,
    new: &Def,
    identity: &Identity,
    now: Timestamp,
) -> Vec<Violation> {
    let requester = identity.requester(state, grantees, now);
    rules::check(state, grantees, &change_of(name, old, new), &requester)
}

/// The create (no `old`) or update the webhook would be asked to judge.
fn change_of<'a>(name: &'a str, old: Option<&'a Def>, new: &'a Def) -> Change<'a> {
    Change {
        operation: if old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        },
        name,
        old: old.map(Def::object),
        new: Some(new.object()),
    }
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
    (builtins && state.org.is_some() && b.object_name() == m.name).then(|| source::seeded_group(b))
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

/// The verdict on one document.
enum Verdict {
    /// With the warnings the webhook would send.
    Allowed(Manifest, Operation, Vec<String>),
    Denied(Manifest, Operation, Vec<Violation>),
    Invalid(Problem),
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

impl Verdict {
    fn loc(&self) -> &Location {
        match self {
            Verdict::Allowed(m, _, _) | Verdict::Denied(m, _, _) => &m.loc,
            Verdict::Invalid(p) => &p.loc,
        }
    }
}

fn denial(m: &Manifest, v: &[Violation]) -> String {
    rules::denial_message(m.kind().as_str(), &m.namespace, &m.name, v)
}

fn findings(verdicts: &[Verdict]) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in verdicts {
        let base = |m: &Manifest, op: Operation, allowed: bool| Finding {
            file: m.loc.file.clone(),
            document: m.loc.document,
            line: m.loc.line,
            kind: Some(m.kind().to_string()),
            namespace: Some(m.namespace.clone()),
            name: Some(m.name.clone()),
            operation: Some(op_name(op)),
            allowed,
            rule: None,
            field: None,
            message: None,
            detail: None,
            warnings: Vec::new(),
        };
        match v {
            Verdict::Allowed(m, op, warnings) => out.push(Finding {
                warnings: warnings.clone(),
                ..base(m, *op, true)
            }),
            Verdict::Denied(m, op, vs) => {
                let message = denial(m, vs);
                for x in vs {
                    out.push(Finding {
                        rule: Some(x.rule.to_string()),
                        field: Some(x.field.clone()),
                        message: Some(message.clone()),
                        detail: Some(x.message.clone()),
                        ..base(m, *op, false)
                    });
                }
            }
            Verdict::Invalid(p) => out.push(Finding {
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
            }),
        }
    }
    out
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

/// Checks `args.paths`; documents that name no namespace are in `-n` (default `default`).
pub fn run(args: CheckArgs, cluster: &ClusterArgs) -> i32 {
    let namespace = cluster.namespace.as_deref().unwrap_or("default");
    let mut loaded = manifest::load(&args.paths, namespace);
    let identity = Identity::new(args.as_user.clone(), args.as_groups.clone());
    let now = Timestamp::now();
    let builtins = !args.no_builtin_groups;

    // The organization as it is: the state under the checked objects, which
    // replace their existing versions.
    let existing = if args.existing.is_empty() {
        manifest::Loaded::default()
    } else {
        manifest::load(&args.existing, namespace)
    };
    let before: BTreeMap<_, &Manifest> = existing.manifests.iter().map(|m| (key(m), m)).collect();
    let checked: BTreeSet<_> = loaded.manifests.iter().map(key).collect();
    let mut all: Vec<Manifest> = existing
        .manifests
        .iter()
        .filter(|m| !checked.contains(&key(m)))
        .cloned()
        .collect();
    all.extend(loaded.manifests.iter().cloned());
    let orgs = source::states(&all, builtins);
    loaded.problems.extend(existing.problems.iter().cloned());
    loaded
        .unreadable
        .extend(existing.unreadable.iter().cloned());

    // One working state per namespace: each check takes its object out (or
    // swaps in its existing version) and puts it back, so a run stays linear
    // in copies. Grantees depend only on groups and API keys: they are
    // resolved once per namespace, and again only to check a group or key.
    let mut work: BTreeMap<String, (OrgState, Grantees)> = orgs
        .iter()
        .map(|(ns, org)| {
            let grantees = resolve_grantees(&org.state);
            (ns.clone(), (org.state.clone(), grantees))
        })
        .collect();
    let mut verdicts: Vec<Verdict> = Vec::new();
    for m in &loaded.manifests {
        let Some((state, base)) = work.get_mut(&m.namespace) else {
            continue;
        };
        let def = def_of(&m.object);
        let old = match before.get(&key(m)) {
            Some(e) => Some(def_of(&e.object)),
            None => seeded_original(m, state, builtins).map(Def::Group),
        };
        let current = def.take_from(state, &m.name);
        if let Some(old) = &old {
            old.put_into(state, &m.name);
        }
        let fresh;
        let grantees = match def {
            Def::Group(_) | Def::ApiKey(_) => {
                fresh = resolve_grantees(state);
                &fresh
            }
            Def::Organization(_) | Def::Member(_) => &*base,
        };
        let violations = check_with(state, grantees, &m.name, old.as_ref(), &def, &identity, now);
        let warnings = if violations.is_empty() {
            warnings::with_advice(
                state,
                grantees,
                &change_of(&m.name, old.as_ref(), &def),
                &|g| crate::core::advice::scan_members_of(state, g),
                now,
            )
        } else {
            Vec::new()
        };
        def.remove_from(state, &m.name);
        if let Some(current) = current {
            current.put_into(state, &m.name);
        }
        let op = if old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        };
        verdicts.push(if violations.is_empty() {
            Verdict::Allowed(m.clone(), op, warnings)
        } else {
            Verdict::Denied(m.clone(), op, violations)
        });
    }
    verdicts.extend(loaded.problems.iter().cloned().map(Verdict::Invalid));
    verdicts.sort_by(|a, b| a.loc().cmp(b.loc()));

    let unreadable: Vec<Finding> = loaded
        .unreadable
        .iter()
        .map(|(path, e)| Finding {
            file: path.clone(),
            document: 0,
            line: 0,
            kind: None,
            namespace: None,
            name: None,
            operation: None,
            allowed: false,
            rule: Some(manifest::INVALID_MANIFEST.into()),
            field: None,
            message: Some(format!("cannot read: {e}")),
            detail: None,
            warnings: Vec::new(),
        })
        .collect();

    let denied = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Denied(..)))
        .count();
    let problems = verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Invalid(_)))
        .count();
    let allowed = verdicts.len() - denied - problems;
    // Documents with problems (a document may have several).
    let invalid = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Invalid(p) => Some((&p.loc.file, p.loc.document, p.loc.line)),
            _ => None,
        })
        .map(|(f, d, l)| (f, d, if d > 0 { 0 } else { l }))
        .collect::<BTreeSet<_>>()
        .len();

    if args.verbose {
        let err = Styles::stderr();
        let mut notes = String::new();
        let who = match &identity.user {
            None => "as a trusted platform principal (CatalogValidity and AdministratorsProtected; pass --as USER for the requester rules)"
                .to_string(),
            Some(u) => format!("as user '{u}' (groups: {})", identity.groups.join(", ")),
        };
        notes.push_str(&format!("{} checking {who}\n", err.dim("note:")));
        for (loc, what) in &loaded.ignored {
            notes.push_str(&format!(
                "{} {loc}: skipped {what} (not an orgaccess.dev kind)\n",
                err.dim("note:")
            ));
        }
        for org in orgs.values() {
            if org.state.org.is_none() {
                notes.push_str(&format!(
                    "{} namespace {} has no Organization: Custom grants on its resources cannot be checked\n",
                    err.dim("note:"),
                    org.namespace
                ));
            }
            if !org.implicit_builtins.is_empty() {
                notes.push_str(&format!(
                    "{} namespace {}: added the built-in groups the operator seeds: {}\n",
                    err.dim("note:"),
                    org.namespace,
                    org.implicit_builtins.join(", ")
                ));
            }
        }
        emit_err(&notes);
    }

    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let mut all = unreadable.clone();
            all.extend(findings(&verdicts));
            emit(&args.output.render(&all, String::new));
        }
        OutputFormat::Human => {
            let s = Styles::stdout();
            let mut out = String::new();
            for f in &unreadable {
                out.push_str(&format!(
                    "{}: {}\n",
                    s.error(&f.file),
                    f.message.as_deref().unwrap_or_default()
                ));
            }
            for v in &verdicts {
                match v {
                    Verdict::Allowed(m, op, warnings) => {
                        if args.verbose {
                            out.push_str(&format!(
                                "{}: {} {} {}{}\n",
                                s.bold(&m.loc.to_string()),
                                m.kind(),
                                m.qualified(),
                                s.ok("allowed"),
                                if *op == Operation::Update {
                                    " (update)"
                                } else {
                                    ""
                                }
                            ));
                        }
                        for w in warnings {
                            out.push_str(&format!(
                                "{}: {} {} {}: {w}\n",
                                s.warn(&m.loc.to_string()),
                                s.warn("Warning:"),
                                m.kind(),
                                m.qualified(),
                            ));
                        }
                    }
                    Verdict::Denied(m, _, vs) => out.push_str(&format!(
                        "{}: {}\n",
                        s.error(&m.loc.to_string()),
                        denial(m, vs)
                    )),
                    Verdict::Invalid(p) => {
                        let what = match (&p.kind, &p.namespace, &p.name) {
                            (Some(k), Some(ns), Some(n)) => format!("{k} {ns}/{n}: "),
                            (Some(k), None, Some(n)) => format!("{k} {n}: "),
                            _ => String::new(),
                        };
                        let field = match &p.field {
                            Some(f)
                                if p.rule == manifest::SCHEMA
                                    && !p.message.contains(f.as_str()) =>
                            {
                                format!("{f}: ")
                            }
                            _ => String::new(),
                        };
                        out.push_str(&format!(
                            "{}: {what}{field}{}\n",
                            s.error(&p.loc.to_string()),
                            p.message
                        ));
                    }
                }
            }
            out.push_str(&summary(
                &verdicts,
                allowed,
                denied,
                invalid,
                unreadable.len(),
                s,
            ));
            emit(&out);
        }
    }
    if !unreadable.is_empty() {
        EXIT_ERROR
    } else if verdicts.is_empty() && !args.allow_empty {
        eprintln!(
            "error: nothing was checked: no orgaccess.dev objects in {} (pass --allow-empty to accept that)",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        EXIT_ERROR
    } else if denied + invalid > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(
    verdicts: &[Verdict],
    allowed: usize,
    denied: usize,
    invalid: usize,
    unreadable: usize,
    s: Styles,
) -> String {
    let objects = allowed + denied;
    if verdicts.is_empty() && unreadable == 0 {
        return "no orgaccess.dev objects found\n".into();
    }
    let namespaces: BTreeSet<&str> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Allowed(m, _, _) | Verdict::Denied(m, _, _) => Some(m.namespace.as_str()),
            Verdict::Invalid(_) => None,
        })
        .collect();
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
        parts.push(format!("{allowed} allowed"));
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
    let warned: usize = verdicts
        .iter()
        .map(|v| match v {
            Verdict::Allowed(_, _, w) => w.len(),
            _ => 0,
        })
        .sum();
    if warned > 0 {
        parts.push(s.warn(&plural(warned, "warning", "warnings")));
    }
    format!(
        "checked {}{ns}: {}\n",
        plural(objects, "object", "objects"),
        parts.join(", ")
    )
}
