//! Import and export in the platform's own JSON (docs/import-export.md):
//! the binary on fixtures written from the platform's documented shapes
//! (`tests/fixtures/platform/`), round trips both ways, and a property test of
//! the privilege mapping over generated privilege sets.
//!
//! The import golden (`tests/golden/import-acme.yaml`) is regenerated with
//! `UPDATE_GOLDEN=1 cargo test --test cli import_export::`; review the diff.

use crate::generators;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use orgaccess::api::ApiKeySpec;
use orgaccess::cli::manifest::{self, Loaded};
use orgaccess::cli::source;
use orgaccess::core::catalog::CATALOG;
use orgaccess::core::effective::resolve_grantees;
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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
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
    let out = run(&["export", "-f", "-"], Some(yaml));
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
    assert!(check.stdout.contains("13 objects"), "{}", check.stdout);

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
    let out = run(&["export", "-f", "examples"], None);
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

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
