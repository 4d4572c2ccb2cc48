//! Import and export in the platform's own JSON (docs/import-export.md):
//! the binary on fixtures written from the platform's documented shapes
//! (`tests/fixtures/platform/`), round trips both ways, and a property test of
//! the privilege mapping over generated privilege sets.
//!
//! The import golden (`tests/golden/import-acme.yaml`) is regenerated with
//! `UPDATE_GOLDEN=1 cargo test --test cli import_export::`; review the diff.

use crate::generators;
use crate::runner::root;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use orgaccess::api::ApiKeySpec;
use orgaccess::cli::manifest::{self, Loaded};
use orgaccess::cli::source;
use orgaccess::core::catalog::CATALOG;
use orgaccess::core::effective::resolve_grantees;
use orgaccess::core::model::IdentitySet;
use orgaccess::core::platform::{
    PlatformOrganization, PlatformPrivilege, from_platform, to_platform,
};
use orgaccess::core::privilege::{PrivilegeSet, parse_all};
use proptest::prelude::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgaccess"))
        .args(args)
        .current_dir(root())
        .env("ORGACCESS_LOG", "warn")
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    out
}

fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "golden {name} differs");
}

const FIXTURE: &str = "tests/fixtures/platform/acme.json";

fn import(args: &[&str], stdin: Option<&str>) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = run(&all, stdin);
    assert_eq!(out.code, 0, "import {args:?}: {}", out.stderr);
    out.stdout
}

fn export(yaml: &str) -> String {
    export_with(yaml, &[])
}

fn export_with(yaml: &str, flags: &[&str]) -> String {
    let mut all = vec!["export", "-f", "-"];
    all.extend_from_slice(flags);
    let out = run(&all, Some(yaml));
    assert_eq!(out.code, 0, "export: {}", out.stderr);
    out.stdout
}

fn loaded(yaml: &str, ns: &str) -> Loaded {
    let mut l = Loaded::default();
    manifest::parse_text("-", yaml, ns, &mut l);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    l
}

fn doc(json: &str) -> PlatformOrganization {
    serde_json::from_str(json).expect("the platform's document")
}

/// A grantee's privileges as a set (the platform's list order is free).
fn set_of(items: &[PlatformPrivilege]) -> PrivilegeSet {
    let (set, unmapped) = from_platform(items, |_, id| id.to_string());
    assert!(unmapped.is_empty(), "{unmapped:?}");
    set
}

#[test]
fn importing_the_platform_fixture_gives_manifests_the_rules_admit() {
    let out = run(&["import", FIXTURE, "-n", "acme"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("import-acme.yaml", &out.stdout);
    // Key values are never read, let alone printed.
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("xx5a1c0ffee"), "a key value was printed");
    }
    // The Administrators group holds every privilege whatever the document lists.
    assert!(
        out.stderr.contains("is the Administrators group"),
        "{}",
        out.stderr
    );
    // The admission rules admit every object (as a trusted principal).
    let check = run(&["check", "-"], Some(&out.stdout));
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(check.stdout.contains("14 objects"), "{}", check.stdout);
    // A key the platform gives no expiry gets none invented: no
    // spec.lifetime, and a note that the template's cap applies.
    assert!(
        out.stderr
            .contains("API key 'acmecorpproduction-push01' has no expiry on the platform")
            && out.stderr.contains("Custom: 365 days"),
        "{}",
        out.stderr
    );

    let l = loaded(&out.stdout, "acme");
    let state = &source::states(&l.manifests, false)["acme"].state;
    // Built-in groups by display name or group type, under their seeded names.
    let viewers = &state.groups["analytics-viewers"];
    assert!(viewers.builtin.is_some() && viewers.privileges.is_empty());
    assert!(state.groups["administrators"].builtin.is_some());
    // Custom grants on a group name the group's object name.
    let limited = &state.groups["limitedadministrators-8f3a"];
    assert!(
        limited
            .privileges
            .iter()
            .any(|p| p.domain == "Groups" && p.resources[0].name == "atlassianadministrators-77c1"),
        "{limited:?}"
    );
    // Usernames lose the platform's provider suffix; invites are not accepted.
    let members: BTreeMap<&str, bool> = state
        .members
        .values()
        .map(|m| (m.identity.username.as_str(), m.accepted))
        .collect();
    assert!(members["ada@acme.example"]);
    assert!(!members["bruno@acme.example"]);
    assert!(members["olivia@acme.example"]);
    // The Organization declares what Custom grants name, tracking IDs included.
    let org = state.org.as_ref().unwrap();
    assert_eq!(org.resources.tracking_ids, ["acme-outlet", "acme-store"]);
    assert_eq!(org.resources.query_pipelines, ["store-pipeline"]);
    assert_eq!(org.resources.sources.len(), 4);
    // The old Impersonate name maps to Search/Impersonate, held by the
    // AuthenticatedSearch template: nothing explicit is left.
    let tokens = &state.api_keys["acmecorpproduction-tokens01"];
    assert_eq!(
        format!("{:?}", tokens.template),
        "Some(AuthenticatedSearch)"
    );
    assert!(tokens.privileges.is_empty(), "{:?}", tokens.privileges);
    assert!(!tokens.enabled);
    assert_eq!(tokens.lifetime.as_deref(), Some("P365D"));
    assert_eq!(tokens.allowed_ips, ["198.51.100.7"]);
    let push = &state.api_keys["acmecorpproduction-push01"];
    assert_eq!(push.lifetime, None);
}

#[test]
fn platform_json_to_manifests_to_json_is_stable() {
    let fixture = doc(&std::fs::read_to_string(root().join(FIXTURE)).unwrap());
    let y1 = import(&[FIXTURE, "-n", "acme"], None);
    let j1 = export(&y1);
    let y2 = import(&["-", "-n", "acme"], Some(&j1));
    let j2 = export(&y2);
    assert_eq!(j1, j2, "JSON -> manifests -> JSON is not stable");
    // The first export adds the built-in groups the operator seeds and the
    // document lacked; from then on the manifests are a fixed point.
    let y3 = import(&["-", "-n", "acme"], Some(&j2));
    assert_eq!(y2, y3, "manifests -> JSON -> manifests is not stable");
    let seeded = |y: &str| y.matches("builtIn:").count();
    assert_eq!((seeded(&y1), seeded(&y2)), (2, 6));

    // Nothing the fixture grants is lost or added on the way (the seeded
    // built-in groups the document lacks are added; Administrators holds all).
    let exported = doc(&j1);
    let by_name: BTreeMap<&str, &str> = [
        ("acmecorpproduction-analytics-viewers", "analytics-viewers"),
        ("LimitedAdministrators_8f3a", "limitedadministrators-8f3a"),
        (
            "AtlassianAdministrators_77c1",
            "atlassianadministrators-77c1",
        ),
        ("Merchandisers_51d0", "merchandisers-51d0"),
    ]
    .into();
    for g in fixture
        .groups
        .iter()
        .filter(|g| by_name.contains_key(g.id.as_str()))
    {
        let out = exported
            .groups
            .iter()
            .find(|e| e.id == by_name[g.id.as_str()])
            .unwrap();
        let renamed: Vec<PlatformPrivilege> = g
            .privileges
            .iter()
            .cloned()
            .map(|mut p| {
                if p.target_id.as_deref() == Some("AtlassianAdministrators_77c1") {
                    p.target_id = Some("atlassianadministrators-77c1".into());
                }
                p
            })
            .collect();
        assert_eq!(set_of(&out.privileges), set_of(&renamed), "group {}", g.id);
        assert_eq!(out.display_name, g.display_name);
        assert_eq!(out.members.len(), g.members.len(), "group {}", g.id);
        assert_eq!(out.invites.len(), g.invites.len(), "group {}", g.id);
    }
    for k in &fixture.api_keys {
        let out = exported
            .api_keys
            .iter()
            .find(|e| e.id == k.id.to_ascii_lowercase())
            .unwrap();
        assert_eq!(
            set_of(&out.privileges),
            set_of(&k.privileges),
            "key {}",
            k.id
        );
        assert_eq!(
            (&out.allowed_ips, &out.denied_ips, out.enabled),
            (&k.allowed_ips, &k.denied_ips, k.enabled)
        );
        assert_eq!(out.lifetime_duration, k.lifetime_duration);
        assert_eq!(out.api_key_template_id, k.api_key_template_id);
        assert_eq!(out.description, k.description);
    }
    // The current Impersonate name is written, never the old one.
    assert!(j1.contains("\"IMPERSONATE_SEARCH_API\""));
    assert!(!j1.contains("\"targetDomain\": \"IMPERSONATE\",\n          \"type\": \"ENABLE\""));
    assert!(!j1.contains("xx5a1c0ffee"));
}

#[test]
fn manifests_to_json_to_manifests_is_identity() {
    // The Sitecore integrator holds Full access, Customer Service included,
    // whose platform names are inferred: written only when asked.
    let out = run(&["export", "-f", "examples", "--allow-inferred"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // What the platform cannot hold is said, not dropped silently.
    assert!(out.stderr.contains("Kubernetes subjects"), "{}", out.stderr);
    let back = import(&["-", "-n", "default"], Some(&out.stdout));

    let mut original = Loaded::default();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if !path.is_file() {
            continue; // examples/install/: the operator's own delivery
        }
        let text = std::fs::read_to_string(&path).unwrap();
        manifest::parse_text(&path.display().to_string(), &text, "default", &mut original);
    }
    let imported = loaded(&back, "default");
    let a = &source::states(&original.manifests, true)["default"].state;
    let b = &source::states(&imported.manifests, true)["default"].state;

    assert_eq!(
        a.org.as_ref().map(|o| &o.display_name),
        b.org.as_ref().map(|o| &o.display_name)
    );
    // Groups: same names, display names, built-in markers and privileges.
    let (ga, gb) = (resolve_grantees(a), resolve_grantees(b));
    assert_eq!(
        a.groups.keys().collect::<Vec<_>>(),
        b.groups.keys().collect::<Vec<_>>()
    );
    for (name, g) in &a.groups {
        let h = &b.groups[name];
        assert_eq!(g.builtin, h.builtin, "{name}");
        assert_eq!(
            g.display_name
                .clone()
                .or(g.builtin.map(|b| b.display_name().into())),
            h.display_name,
            "{name}"
        );
        assert_eq!(ga.groups[name], gb.groups[name], "{name}'s privileges");
    }
    // API keys: the whole spec.
    let specs = |l: &Loaded| -> BTreeMap<String, ApiKeySpec> {
        manifest::api_keys(&l.manifests)
            .map(|k| (k.metadata.name.clone().unwrap(), k.spec.clone()))
            .collect()
    };
    assert_eq!(specs(&original), specs(&imported));
    // Members: who they are, their groups, their acceptance (object names are
    // derived from usernames; Kubernetes subjects are orgaccess's own).
    let members = |s: &orgaccess::core::model::OrgState| {
        s.members
            .values()
            .map(|m| {
                let mut groups = m.groups.clone();
                groups.sort();
                (
                    (
                        m.identity.username.clone(),
                        format!("{:?}", m.identity.provider),
                    ),
                    (groups, m.accepted),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(members(a), members(b));
}

#[test]
fn unknown_domains_are_reported_and_stop_the_import_unless_allowed() {
    let fixture = "tests/fixtures/platform/unknown-domain.json";
    let out = run(&["import", fixture], None);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "", "no manifests from a partial import");
    assert!(
        out.stderr
            .contains("unknown domain PLATFORM/QUANTUM_COMPUTER"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Content/Fields does not offer type ENABLE")
    );
    let out = run(&["import", fixture, "--allow-unknown"], None);
    assert_eq!(out.code, 0);
    assert!(
        out.stderr
            .contains("unknown domain PLATFORM/QUANTUM_COMPUTER")
    );
    assert!(
        out.stdout.contains("domain: Organization"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("QUANTUM"));
    // Not JSON at all: an error naming the file.
    let out = run(&["import", "-"], Some("not json"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("not the platform's organization document")
    );
}

/// Resource names of Custom grants; `*` stands for every resource.
const RESOURCES: [&str; 5] = ["src-a", "pipeline b", "Group_C", "d", "*"];

fn arb_set() -> impl Strategy<Value = PrivilegeSet> {
    let entry = (
        0..CATALOG.len(),
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec((0..RESOURCES.len(), any::<bool>()), 1..4),
    );
    prop::collection::vec(entry, 0..16).prop_map(|entries| {
        let specs: Vec<_> = entries
            .into_iter()
            .map(|(i, p, c, r)| generators::privilege(&RESOURCES, i, p, c, r))
            .collect();
        parse_all(&specs).expect("generated privileges are valid")
    })
}

/// One identity set: an OpenID domain of a provider, an SSO group or a
/// Salesforce profile.
fn arb_identity_set() -> impl Strategy<Value = IdentitySet> {
    use orgaccess::core::model::{OpenIdDomain, Provider};
    let providers = [
        Provider::Google,
        Provider::Microsoft,
        Provider::Salesforce,
        Provider::SalesforceSandbox,
    ];
    prop_oneof![
        (0..providers.len(), "[a-z]{1,8}\\.(example|test)").prop_map(move |(p, domain)| {
            IdentitySet {
                open_id_domain: Some(OpenIdDomain {
                    provider: providers[p],
                    domain,
                }),
                sso_group: None,
                salesforce_profile: None,
            }
        }),
        "[A-Za-z][A-Za-z0-9 _-]{0,20}".prop_map(|g| IdentitySet {
            open_id_domain: None,
            sso_group: Some(g),
            salesforce_profile: None,
        }),
        "[A-Za-z][A-Za-z0-9 ]{0,20}".prop_map(|p| IdentitySet {
            open_id_domain: None,
            sso_group: None,
            salesforce_profile: Some(p),
        }),
    ]
}

/// Manifests (JSON documents, which YAML reads) of one organization with
/// groups holding these privilege sets and identity sets.
fn organization_yaml(groups: &[(PrivilegeSet, Vec<IdentitySet>)]) -> String {
    use orgaccess::api::{Group, GroupSpec};
    let mut docs = vec![ORG.to_string()];
    for (i, (set, sets)) in groups.iter().enumerate() {
        let mut g = Group::new(
            &format!("group-{i}"),
            GroupSpec {
                display_name: Some(format!("Group {i}")),
                built_in: None,
                template: None,
                privileges: set.to_specs(),
                identity_sets: sets.clone(),
                access: Vec::new(),
                duplicate_of: None,
                owners: Vec::new(),
                review_every: None,
            },
        );
        g.metadata.namespace = Some("acme".into());
        docs.push(serde_json::to_string(&g).unwrap());
    }
    docs.join("\n---\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random organizations' groups keep their identity sets and privileges
    /// through export and import (in process; inferred names and
    /// incomplete documents allowed, so that only the mapping is judged).
    #[test]
    fn groups_with_identity_sets_survive_export_and_import(
        groups in prop::collection::vec(
            (arb_set(), prop::collection::vec(arb_identity_set(), 0..4)),
            0..4,
        )
    ) {
        use orgaccess::cli::export::{Allow, KeyExtras, export};
        let yaml = organization_yaml(&groups);
        let l = loaded(&yaml, "acme");
        let org = &source::states(&l.manifests, true)["acme"];
        let now = jiff::Timestamp::now();
        let allow = Allow { inferred: true, incomplete: true };
        let exported = export(org, |_| KeyExtras::default(), now, allow);
        prop_assert!(exported.problems.is_empty(), "{:?}", exported.problems);
        let json = serde_json::to_string(&exported.doc).unwrap();
        let read: PlatformOrganization = serde_json::from_str(&json).unwrap();
        let back = orgaccess::cli::import::import(&read, None, Some("acme"), now);
        for (i, (set, sets)) in groups.iter().enumerate() {
            let name = format!("group-{i}");
            let g = back
                .groups
                .iter()
                .find(|g| g.metadata.name.as_deref() == Some(name.as_str()))
                .unwrap();
            prop_assert_eq!(&g.spec.identity_sets, sets);
            // Custom grants on Groups name object names, which import
            // derives from the IDs; compare through the same renaming.
            let (want, _) = from_platform(&to_platform(set), |k, id| match k {
                orgaccess::core::catalog::ResourceKind::Groups => group_name(id),
                orgaccess::core::catalog::ResourceKind::ApiKeys => {
                    orgaccess::cli::import::object_name(id, orgaccess::core::apikey::MAX_NAME_LEN)
                }
                _ => id.to_string(),
            });
            let (got, errors) =
                orgaccess::core::effective::granted_by_spec(None, &g.spec.privileges);
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(got, want);
        }
    }

    /// Any valid privilege set survives the platform's format, through JSON,
    /// and is written the same way again.
    #[test]
    fn privilege_sets_survive_the_platform_format(set in arb_set()) {
        let items = to_platform(&set);
        let json = serde_json::to_string(&items).unwrap();
        let read: Vec<PlatformPrivilege> = serde_json::from_str(&json).unwrap();
        let (back, unmapped) = from_platform(&read, |_, id| id.to_string());
        prop_assert!(unmapped.is_empty(), "{:?}", unmapped);
        prop_assert_eq!(&back, &set);
        prop_assert_eq!(to_platform(&back), items);
    }

    /// The platform's list order and duplicates do not matter.
    #[test]
    fn item_order_does_not_matter(set in arb_set(), seed in any::<u64>()) {
        let mut items = to_platform(&set);
        let n = items.len();
        if n > 1 {
            items.rotate_left((seed as usize) % n);
            items.push(items[0].clone());
        }
        let (back, _) = from_platform(&items, |_, id| id.to_string());
        prop_assert_eq!(back, set);
    }
}

// ---------------------------------------------------------------------------
// import -> check -> export round-trips the platform's JSON without invented
// facts (issue 32); docs/import-export.md lists every difference allowed here.
// ---------------------------------------------------------------------------

/// The object names import gives the fixture's groups that are not built-in.
fn group_name(id: &str) -> String {
    orgaccess::cli::import::object_name(id, 253)
}

/// A grantee's privileges, written the one way export writes them.
fn canonical(
    items: &[PlatformPrivilege],
    rename: impl Fn(&str) -> String,
) -> Vec<PlatformPrivilege> {
    let renamed: Vec<PlatformPrivilege> = items
        .iter()
        .cloned()
        .map(|mut p| {
            if p.target_domain == "GROUP" {
                p.target_id = p.target_id.map(|t| if t == "*" { t } else { rename(&t) });
            }
            p
        })
        .collect();
    to_platform(&set_of(&renamed))
}

/// The keys of every object in `v` at `path` (groups or apiKeys).
fn keys_of(v: &serde_json::Value, list: &str) -> std::collections::BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o.as_object().unwrap().keys().cloned())
        .collect()
}

#[test]
fn platform_json_round_trips_through_import_check_and_export_without_invented_facts() {
    let text = std::fs::read_to_string(root().join(FIXTURE)).unwrap();
    let fixture = doc(&text);
    // import
    let yaml = import(&[FIXTURE, "-n", "acme"], None);
    // check: what import wrote, admission admits.
    let check = run(&["check", "-", "-n", "acme"], Some(&yaml));
    assert_eq!(check.code, 0, "{}", check.stdout);
    // export, with no flag: the fixture holds only documented names.
    let json = export(&yaml);
    let exported = doc(&json);

    // No field the platform's document does not have; no invented value.
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&text).unwrap(),
        serde_json::from_str(&json).unwrap(),
    );
    let top =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(top(&a), top(&b));
    for list in ["groups", "apiKeys"] {
        let extra: Vec<_> = keys_of(&b, list)
            .difference(&keys_of(&a, list))
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{list}: fields the input lacks: {extra:?}"
        );
    }
    assert!(
        !json.contains("\"ANY\"") && !json.contains("x-orgaccess"),
        "{json}"
    );

    // Equal to the input modulo the listed differences.
    assert_eq!(exported.organization_id, fixture.organization_id);
    assert_eq!(exported.display_name, fixture.display_name);
    let by_id: BTreeMap<&str, _> = exported.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for g in &fixture.groups {
        let admin = g.group_type.as_deref() == Some("ADMINISTRATOR");
        // Built-in groups keep their seeded names; the others are renamed.
        let id = match g.display_name.as_deref() {
            _ if admin => "administrators".to_string(),
            Some("Analytics Viewers") => "analytics-viewers".to_string(),
            _ => group_name(&g.id),
        };
        let out = by_id[id.as_str()];
        seen.insert(id.clone());
        assert_eq!(out.display_name, g.display_name, "{id}");
        // groupType is written for Administrators only.
        assert_eq!(
            out.group_type.as_deref(),
            admin.then_some("ADMINISTRATOR"),
            "{id}"
        );
        if admin {
            // Administrators hold every privilege whose name is documented.
            let want: Vec<_> = to_platform(&orgaccess::core::builtin::full_access())
                .into_iter()
                .filter(|p| !orgaccess::core::platform::wire_name_inferred(p))
                .collect();
            assert_eq!(out.privileges, want);
        } else {
            let rename = |t: &str| {
                let g = fixture.groups.iter().find(|g| g.id == t).unwrap();
                group_name(&g.id)
            };
            assert_eq!(out.privileges, canonical(&g.privileges, rename), "{id}");
        }
        // Usernames without the platform's provider suffix; same providers.
        let plain = |ms: &[orgaccess::core::platform::PlatformMember]| {
            let mut v: Vec<_> = ms
                .iter()
                .map(|m| {
                    (
                        orgaccess::core::platform::plain_username(&m.username, &m.provider),
                        m.provider.clone(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(plain(&out.members), plain(&g.members), "{id}");
        assert_eq!(plain(&out.invites), plain(&g.invites), "{id}");
        assert!(out.identity_sets.is_empty());
    }
    // The only groups added are the built-in ones the operator seeds, as seeded.
    for g in exported.groups.iter().filter(|g| !seen.contains(&g.id)) {
        let b = orgaccess::core::builtin::BuiltinGroup::ALL
            .into_iter()
            .find(|b| b.object_name() == g.id)
            .unwrap_or_else(|| panic!("group {} was invented", g.id));
        assert_eq!(g.display_name.as_deref(), Some(b.display_name()));
        assert!(g.members.is_empty() && g.invites.is_empty());
    }
    assert_eq!(exported.api_keys.len(), fixture.api_keys.len());
    for k in &fixture.api_keys {
        let out = exported
            .api_keys
            .iter()
            .find(|e| e.id == k.id.to_ascii_lowercase())
            .unwrap();
        let mut want = k.clone();
        want.id = out.id.clone();
        want.privileges = canonical(&k.privileges, |t| t.to_string());
        // expirationDate is the platform's read-only record; the manifests'
        // status has none until the operator runs.
        want.expiration_date = None;
        assert_eq!(out, &want, "key {}", k.id);
    }
}

fn expect(out: &Out, code: i32, stderr_has: &str) {
    assert_eq!(
        out.code, code,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains(stderr_has), "{}", out.stderr);
}

const ORG: &str = "apiVersion: orgaccess.dev/v1alpha1
kind: Organization
metadata: {name: acme, namespace: acme}
spec: {displayName: ACME}
";

#[test]
fn inferred_wire_names_stop_the_export_unless_allowed_and_then_are_marked() {
    let yaml = format!(
        "{ORG}---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {{name: support, namespace: acme}}
spec:
  displayName: Support
  privileges:
    - {{service: CustomerService, domain: UseCaseAssist, level: Allowed}}
    - {{service: Search, domain: ExecuteQueries, level: Allowed}}
"
    );
    let out = run(&["export", "-f", "-"], Some(&yaml));
    expect(
        &out,
        1,
        "group 'support' holds CUSTOMER_SERVICE/USE_CASE_ASSIST",
    );
    assert!(out.stderr.contains("--allow-inferred"), "{}", out.stderr);
    assert_eq!(out.stdout, "", "nothing is written");

    let json = export_with(&yaml, &["--allow-inferred"]);
    let exported = doc(&json);
    assert!(json.contains("\"x-orgaccess-inferred\""), "{json}");
    assert!(
        exported
            .inferred
            .contains(&"CUSTOMER_SERVICE/USE_CASE_ASSIST".to_string())
    );
    let support = exported.groups.iter().find(|g| g.id == "support").unwrap();
    assert!(
        support
            .privileges
            .iter()
            .any(|p| p.target_domain == "USE_CASE_ASSIST")
    );
    // Administrators' inferred names are written with the flag, and listed too.
    assert!(exported.inferred.contains(&"PLATFORM/USERS".to_string()));
    // Read back: the marker is understood and the privilege kept.
    let back = import(&["-", "-n", "acme"], Some(&json));
    assert!(back.contains("domain: UseCaseAssist"), "{back}");
    assert_eq!(export_with(&back, &["--allow-inferred"]), json);
}

#[test]
fn administrators_alone_export_without_their_inferred_names() {
    let out = run(&["export", "-f", "-"], Some(ORG));
    expect(&out, 0, "group 'administrators': left out");
    let exported = doc(&out.stdout);
    assert!(exported.inferred.is_empty());
    let admin = exported
        .groups
        .iter()
        .find(|g| g.id == "administrators")
        .unwrap();
    assert!(
        admin
            .privileges
            .iter()
            .all(|p| !orgaccess::core::platform::wire_name_inferred(p))
    );
    assert!(!out.stdout.contains("CUSTOMER_SERVICE") && !out.stdout.contains("\"USERS\""));
    // With --allow-inferred they are written, and listed.
    let all = doc(&export_with(ORG, &["--allow-inferred"]));
    assert_eq!(
        all.inferred,
        orgaccess::core::catalog::INFERRED_API_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn any_listed_is_never_written_as_a_provider_nor_read_from_one() {
    let yaml = format!(
        "{ORG}---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {{name: ann, namespace: acme}}
spec:
  identity: {{provider: AnyListed, username: ann@acme.example}}
  groups: [users]
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {{name: bob, namespace: acme}}
spec:
  identity: {{provider: Google, username: bob@acme.example}}
  groups: [users]
  accepted: true
"
    );
    let out = run(&["export", "-f", "-"], Some(&yaml));
    expect(&out, 1, "member 'ann' has provider AnyListed");
    assert_eq!(out.stdout, "");
    let out = run(&["export", "-f", "-", "--allow-incomplete"], Some(&yaml));
    expect(&out, 0, "member 'ann' has provider AnyListed");
    assert!(
        !out.stdout.contains("\"ANY\"") && !out.stdout.contains("ann@"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("bob@acme.example"));

    // The platform writes no ANY: one in a document is unknown, not AnyListed.
    let json = r#"{"organizationId": "acme", "groups": [{"id": "g", "privileges": [],
        "invites": [{"username": "ann@acme.example", "provider": "ANY"}]}]}"#;
    let out = run(&["import", "-"], Some(json));
    expect(
        &out,
        1,
        "provider 'ANY', which is not in the platform's provider enum",
    );
    assert_eq!(out.stdout, "");
    let out = run(&["import", "-", "--allow-unknown"], Some(json));
    expect(&out, 0, "provider 'ANY'");
    assert!(
        !out.stdout.contains("AnyListed") && !out.stdout.contains("ann@"),
        "{}",
        out.stdout
    );
}

#[test]
fn identity_sets_round_trip_under_the_orgaccess_extension() {
    let yaml = format!(
        "{ORG}---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {{name: staff, namespace: acme}}
spec:
  displayName: Staff
  privileges:
    - {{service: Search, domain: ExecuteQueries, level: Allowed}}
  identitySets:
    - openIdDomain: {{provider: Google, domain: acme.example}}
    - ssoGroup: Engineering
    - salesforceProfile: Sales User
"
    );
    let out = run(&["export", "-f", "-"], Some(&yaml));
    expect(&out, 0, "x-orgaccess-identitySets");
    let exported = doc(&out.stdout);
    let staff = exported.groups.iter().find(|g| g.id == "staff").unwrap();
    assert_eq!(staff.identity_sets.len(), 3);
    let raw: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let group = raw["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "staff")
        .unwrap();
    assert_eq!(
        group["x-orgaccess-identitySets"][0]["openIdDomain"]["domain"],
        "acme.example"
    );
    let back = import(&["-", "-n", "acme"], Some(&out.stdout));
    let l = loaded(&back, "acme");
    let original = loaded(&yaml, "acme");
    let sets = |l: &Loaded| {
        manifest::groups(&l.manifests)
            .find(|g| g.metadata.name.as_deref() == Some("staff"))
            .unwrap()
            .spec
            .identity_sets
            .clone()
    };
    assert_eq!(sets(&l), sets(&original));
    assert_eq!(export(&back), out.stdout);
}

#[test]
fn import_refuses_what_admission_would_refuse_unless_allowed() {
    // An Anonymous search key asking for a year (its template caps at 90
    // days) and a Custom key holding Search Impersonate (reserved to the
    // Authenticated search template).
    let json = r#"{"organizationId": "acme", "groups": [], "apiKeys": [
        {"id": "long", "displayName": "Too long", "enabled": true,
         "privileges": [{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "type": "ENABLE"}],
         "lifetimeDuration": "P365D", "apiKeyTemplateId": "AnonymousSearch"},
        {"id": "imp", "displayName": "Impersonator", "enabled": true,
         "privileges": [{"owner": "SEARCH_API", "targetDomain": "IMPERSONATE_SEARCH_API", "type": "ENABLE"}],
         "lifetimeDuration": "P30D"}]}"#;
    let out = run(&["import", "-", "-n", "acme"], Some(json));
    expect(&out, 1, "refused: ApiKey acme/long");
    assert!(
        out.stderr.contains("refused: ApiKey acme/imp"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--allow-refused"), "{}", out.stderr);
    assert_eq!(out.stdout, "", "no manifests that check then refuses");
    let out = run(
        &["import", "-", "-n", "acme", "--allow-refused"],
        Some(json),
    );
    expect(&out, 0, "refused: ApiKey acme/long");
    // What import said, check says.
    let check = run(&["check", "-", "-n", "acme"], Some(&out.stdout));
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(check.stdout.contains("2 denied"), "{}", check.stdout);
}
