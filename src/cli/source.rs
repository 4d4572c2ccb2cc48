//! Where the questions read an organization from: manifests (`-f PATH`) or
//! the cluster (`--kubeconfig`, `--context`, `-n` as kubectl reads them:
//! [`ClusterArgs`]).
//!
//! Built-in groups: the operator seeds them when an Organization is created,
//! so they are usually not in a Git repository. Offline, when a namespace has
//! an Organization, each built-in group that the manifests do not define
//! (under its seeded name, e.g. `analytics-viewers`) is added as the operator
//! would seed it (`--no-builtin-groups` turns this off).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kube::Api;
use kube::api::ListParams;

use super::ClusterArgs;
use super::manifest::{self, Loaded, Location, Manifest};
use crate::api::{self, AccessReview, ApiKey, Group, Member, Organization};
use crate::core::builtin::BuiltinGroup;
use crate::core::model::{GroupDef, OrgState};

/// Where to read the organization from.
#[derive(Args, Clone, Debug, Default)]
pub struct SourceArgs {
    /// Read manifests instead of the cluster: a file, a directory (searched
    /// recursively for *.yaml, *.yml, *.json) or `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// With -f, do not add the built-in groups the operator seeds.
    #[arg(long)]
    pub no_builtin_groups: bool,
}

/// One organization, ready for questions.
#[derive(Debug)]
pub struct Org {
    pub namespace: String,
    pub state: OrgState,
    /// The namespace was named (in the cluster, on the command line or in the
    /// manifests), so generated manifests should name it too.
    pub explicit_namespace: bool,
    /// Built-in groups added because the manifests do not define them.
    pub implicit_builtins: Vec<&'static str>,
    /// When each key was last used, from its `status.lastUsedAt` (keys
    /// without one, and manifests without status, are absent).
    pub key_last_used: BTreeMap<String, jiff::Timestamp>,
    /// Where each object's manifest is, by `Kind/name` (empty for the cluster).
    pub locations: BTreeMap<String, Location>,
}

/// Adds the built-in groups the operator would have seeded and the manifests lack.
pub fn add_builtin_groups(state: &mut OrgState) -> Vec<&'static str> {
    if state.org.is_none() {
        return Vec::new();
    }
    let mut added = Vec::new();
    for b in BuiltinGroup::ALL {
        let name = b.object_name();
        if state.groups.contains_key(name) {
            continue;
        }
        state
            .groups
            .insert(name.to_string(), Arc::new(GroupDef::seeded(b)));
        added.push(name);
    }
    added
}

/// The state of every namespace in the manifests.
pub fn states(manifests: &[Manifest], builtins: bool) -> BTreeMap<String, Org> {
    let namespaces: BTreeSet<&str> = manifests.iter().map(|m| m.namespace.as_str()).collect();
    namespaces
        .into_iter()
        .map(|ns| {
            let mut state = api::org_state(
                ns,
                manifest::organizations(manifests),
                manifest::groups(manifests),
                manifest::members(manifests),
                manifest::api_keys(manifests),
            );
            api::add_reviews(&mut state, ns, manifest::access_reviews(manifests));
            let implicit_builtins = if builtins {
                add_builtin_groups(&mut state)
            } else {
                Vec::new()
            };
            let explicit_namespace = manifests
                .iter()
                .any(|m| m.namespace == ns && m.explicit_namespace);
            (
                ns.to_string(),
                Org {
                    namespace: ns.to_string(),
                    state,
                    explicit_namespace,
                    implicit_builtins,
                    key_last_used: api::key_last_used(ns, manifest::api_keys(manifests)),
                    locations: manifests
                        .iter()
                        .filter(|m| m.namespace == ns)
                        .map(|m| (format!("{}/{}", m.kind(), m.name), m.loc.clone()))
                        .collect(),
                },
            )
        })
        .collect()
}

/// Loads manifests for a question: any unreadable path or invalid document is
/// an error (an answer from a partial organization would mislead).
pub fn load_for_question(src: &SourceArgs, cluster: &ClusterArgs) -> anyhow::Result<Loaded> {
    let default_ns = cluster.namespace.as_deref().unwrap_or("default");
    load_strict(&src.files, default_ns, "organization from the manifests")
}

/// Loads `paths` (documents naming no namespace are in `namespace`); any
/// unreadable path or invalid document is an error "cannot read the WHAT".
pub fn load_strict(paths: &[PathBuf], namespace: &str, what: &str) -> anyhow::Result<Loaded> {
    let loaded = manifest::load(paths, namespace);
    let mut errors: Vec<String> = loaded
        .unreadable
        .iter()
        .map(|(path, e)| format!("{path}: {e}"))
        .collect();
    errors.extend(
        loaded
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.loc, p.message)),
    );
    if !errors.is_empty() {
        bail!(
            "cannot read the {what}:\n  {}\n(`orgaccess check` lists every problem)",
            errors.join("\n  ")
        );
    }
    Ok(loaded)
}

/// What the question is about, to choose the namespace when none is given.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Group(&'a str),
    Member(&'a str),
    ApiKey(&'a str),
    Any,
}

impl Subject<'_> {
    fn present(&self, s: &OrgState) -> bool {
        match self {
            Subject::Group(n) => s.groups.contains_key(*n),
            Subject::Member(n) => s.members.contains_key(*n),
            Subject::ApiKey(n) => s.api_keys.contains_key(*n),
            Subject::Any => true,
        }
    }

    fn describe(&self) -> String {
        match self {
            Subject::Group(n) => format!("Group '{n}'"),
            Subject::Member(n) => format!("Member '{n}'"),
            Subject::ApiKey(n) => format!("ApiKey '{n}'"),
            Subject::Any => "any object".into(),
        }
    }

    /// The names of this kind, for "did you mean".
    fn names(&self, s: &OrgState) -> Vec<String> {
        match self {
            Subject::Group(_) => s.groups.keys().cloned().collect(),
            Subject::Member(_) => s.members.keys().cloned().collect(),
            Subject::ApiKey(_) => s.api_keys.keys().cloned().collect(),
            Subject::Any => Vec::new(),
        }
    }
}

/// The object must exist in the organization, or the error lists what does.
pub fn require(org: &Org, subject: Subject) -> anyhow::Result<()> {
    if subject.present(&org.state) {
        return Ok(());
    }
    let names = subject.names(&org.state);
    let known = if names.is_empty() {
        "there are none".to_string()
    } else {
        format!("the namespace has: {}", names.join(", "))
    };
    bail!(
        "no {} in namespace {}; {known}",
        subject.describe(),
        org.namespace
    )
}

/// Reads the organization the question is about, from manifests or the
/// cluster. `-n` is the namespace; with `-f` and no `-n`, the only namespace
/// holding the object asked about.
pub async fn organization(
    src: &SourceArgs,
    cluster: &ClusterArgs,
    subject: Subject<'_>,
) -> anyhow::Result<Org> {
    if src.files.is_empty() {
        let org = from_cluster(cluster).await?.0;
        require(&org, subject)?;
        return Ok(org);
    }
    let loaded = load_for_question(src, cluster)?;
    let mut orgs = states(&loaded.manifests, !src.no_builtin_groups);
    if orgs.is_empty() {
        bail!(
            "the manifests hold no orgaccess.dev objects ({})",
            src.files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let ns = match &cluster.namespace {
        Some(ns) => ns.clone(),
        None => {
            let holding: Vec<&String> = orgs
                .iter()
                .filter(|(_, o)| subject.present(&o.state))
                .map(|(ns, _)| ns)
                .collect();
            match holding.as_slice() {
                [one] => (*one).clone(),
                [] if orgs.len() == 1 => orgs.keys().next().cloned().unwrap_or_default(),
                [] => bail!(
                    "no {} in the manifests (namespaces: {})",
                    subject.describe(),
                    orgs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                many => bail!(
                    "{} several namespaces ({}); choose one with --namespace",
                    match subject {
                        Subject::Any => "the manifests hold".to_string(),
                        s => format!("{} is in", s.describe()),
                    },
                    many.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let org = orgs.remove(&ns).ok_or_else(|| {
        anyhow::anyhow!(
            "the manifests have no objects in namespace {ns} (namespaces: {})",
            orgs.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let org = Org {
        explicit_namespace: org.explicit_namespace || cluster.namespace.is_some(),
        ..org
    };
    require(&org, subject)?;
    Ok(org)
}

/// Reads one namespace's objects from the cluster (and returns the client
/// for more). The operator has seeded the built-in groups there, so none are added.
pub async fn from_cluster(cluster: &ClusterArgs) -> anyhow::Result<(Org, kube::Client)> {
    let client = cluster.client().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a cluster ({e:#}); use -f PATH to read manifests instead, or --kubeconfig/--context"
        )
    })?;
    let ns = cluster.namespace_or(&client);
    let lp = ListParams::default();
    let hint = |kind: &str| {
        format!(
            "cannot list {kind} in namespace {ns} (are the orgaccess CRDs installed, `orgaccess crds | kubectl apply -f -`, and may you list them?)"
        )
    };
    let orgs = Api::<Organization>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await
        .with_context(|| hint("organizations"))?;
    let groups = Api::<Group>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await
        .with_context(|| hint("groups"))?;
    let members = Api::<Member>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await
        .with_context(|| hint("members"))?;
    let keys = Api::<ApiKey>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await
        .with_context(|| hint("apikeys"))?;
    // A cluster whose CRDs predate AccessReview has no reviews to read.
    let reviews = match Api::<AccessReview>::namespaced(client.clone(), &ns)
        .list(&lp)
        .await
    {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
        Err(e) => return Err(e).with_context(|| hint("accessreviews")),
    };
    let mut state = api::org_state(&ns, &orgs.items, &groups.items, &members.items, &keys.items);
    api::add_reviews(&mut state, &ns, &reviews);
    let key_last_used = api::key_last_used(&ns, &keys.items);
    Ok((
        Org {
            namespace: ns,
            state,
            explicit_namespace: true,
            implicit_builtins: Vec::new(),
            key_last_used,
            locations: BTreeMap::new(),
        },
        client,
    ))
}
