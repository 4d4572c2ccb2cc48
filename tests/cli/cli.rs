//! The command line, run as a binary: golden outputs on `examples/`, the
//! corpus of bad manifests (`tests/golden/bad/`, `tests/golden/invalid/`) and
//! errors that must be clear and never a panic.
//!
//! Golden files live in `tests/golden/`; regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test cli cli::` and review the diff.

use crate::runner::{Out, root, run_env};
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the binary from the crate root (so paths in outputs are relative).
fn run_with(args: &[&str], stdin: Option<&str>) -> Out {
    run_env(args, stdin, None)
}

fn run(args: &[&str]) -> Out {
    run_with(args, None)
}

/// Compares with (or, with UPDATE_GOLDEN=1, writes) `tests/golden/<name>`.
fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}; run UPDATE_GOLDEN=1 cargo test --test cli cli::",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {} (UPDATE_GOLDEN=1 regenerates it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display(),
            first + 1
        );
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

#[test]
fn check_examples_is_clean() {
    let out = run(&["check", "examples"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    golden("check-examples.txt", &out.stdout);

    let out = run(&["check", "examples", "-o", "json"]);
    assert_eq!(out.code, 0);
    golden("check-examples.json", &out.stdout);
    let v = json(&out.stdout);
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|f| f["allowed"] == true));
}

#[test]
fn check_verbose_lists_objects_skipped_documents_and_builtin_groups() {
    let out = run(&[
        "check",
        "-v",
        "examples",
        "tests/golden/invalid/unknown-kind.yaml",
    ]);
    assert_eq!(out.code, 1);
    golden("check-examples-verbose.txt", &out.stdout);
    golden("check-examples-verbose.stderr.txt", &out.stderr);
    assert!(out.stderr.contains("skipped v1 ConfigMap unrelated"));
    assert!(out.stderr.contains("added the built-in groups the operator seeds: administrators, analytics-managers, analytics-viewers"));
}

#[test]
fn check_reads_multi_document_yaml_from_stdin() {
    let mut all = String::new();
    for f in [
        "00-organization.yaml",
        "10-groups.yaml",
        "20-members.yaml",
        "30-apikeys.yaml",
    ] {
        all.push_str("---\n");
        all.push_str(&std::fs::read_to_string(root().join("examples").join(f)).unwrap());
    }
    // What `helm template` emits around our objects.
    all.push_str("---\n# Source: chart/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n");
    let out = run_with(&["check", "-", "--namespace", "acme"], Some(&all));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        out.stdout,
        "checked 10 objects in namespace acme: all allowed\n"
    );
}

#[test]
fn check_as_a_user_applies_the_requester_rules() {
    // Olivia holds Administrators: everything is hers to create, except her
    // own Member (until it exists she is nobody's subject, as at the webhook).
    let out = run(&["check", "examples", "--as", "olivia", "-o", "json"]);
    assert_eq!(out.code, 1);
    let v = json(&out.stdout);
    let denied: Vec<&serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["allowed"] == false)
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["name"], "olivia-owner");
    assert_eq!(denied[0]["rule"], "UnknownRequester");
}

/// `--as` is kubectl's: the user, the groups given and `system:authenticated`,
/// the same for every command that takes it; no `system:serviceaccounts`
/// groups, which no Member subject can name.
#[test]
fn as_is_the_same_identity_for_every_command() {
    let sa = "system:serviceaccount:ci:deployer";
    let out = run(&[
        "check",
        "examples",
        "-v",
        "--as",
        sa,
        "--as-group",
        "devs",
        "-o",
        "json",
    ]);
    assert!(
        out.stderr.contains(&format!(
            "checking as user '{sa}' (groups: devs, system:authenticated)\n"
        )),
        "{}",
        out.stderr
    );
    // Nobody maps the service account: every object is refused, as
    // unmapped, by check and by duplicate alike.
    let findings = json(&out.stdout).as_array().unwrap().clone();
    assert!(
        findings.iter().all(|f| f["allowed"] == false)
            && findings.iter().any(|f| f["rule"] == "UnknownRequester"),
        "{}",
        out.stdout
    );
    let dup = run(&[
        "duplicate",
        "group",
        "limited-administrators",
        "-f",
        "examples",
        "--as",
        sa,
        "--as-group",
        "devs",
    ]);
    assert_eq!(dup.code, 1, "{}", dup.stderr);
    assert!(dup.stderr.contains("[UnknownRequester]"), "{}", dup.stderr);
    // A group without a user is refused by each, as kubectl refuses it.
    for cmd in [
        &["check", "examples", "--as-group", "devs"][..],
        &[
            "duplicate",
            "group",
            "limited-administrators",
            "-f",
            "examples",
            "--as-group",
            "devs",
        ],
        &[
            "can-i",
            "view",
            "Organization/Organization",
            "-f",
            "examples",
            "--as-group",
            "devs",
        ],
    ] {
        assert_eq!(run(cmd).code, 2, "{cmd:?}");
    }
}

#[test]
fn a_builtin_group_kept_in_git_is_an_update_of_the_seeded_one() {
    let manifests = "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme}\nspec: {displayName: ACME}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: content-managers}\nspec:\n  builtIn: ContentManagers\n  template: ContentManagers\n  privileges: [{service: Content, domain: Fields, level: View}]\n";
    let out = run_with(&["check", "-", "-o", "json"], Some(manifests));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v = json(&out.stdout);
    let group = &v.as_array().unwrap()[1];
    assert_eq!(group["name"], "content-managers");
    assert_eq!(group["operation"], "UPDATE");
    assert_eq!(group["allowed"], true);
    // Under another name it is a create, and only the operator creates built-in groups.
    let renamed = manifests.replace("name: content-managers", "name: my-content-managers");
    let out = run_with(&["check", "-"], Some(&renamed));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("[AdministratorsProtected] spec.builtIn")
    );
}

#[test]
fn existing_manifests_are_the_state_and_make_updates() {
    // A pull request changes one group and adds a member; main is examples/.
    let change = std::fs::read_to_string(root().join("examples/10-groups.yaml"))
        .unwrap()
        .split("---\n")
        .find(|d| d.contains("name: limited-administrators"))
        .unwrap()
        .replace(
            "{service: Analytics, domain: Dimensions, level: Edit}",
            "{service: Analytics, domain: Dimensions, level: View}",
        )
        + "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {name: new-hire}\nspec:\n  identity: {provider: Email, username: new@acme.example}\n  groups: [analytics-viewers]\n";
    let out = run_with(
        &[
            "check",
            "-",
            "--existing",
            "examples",
            "--as",
            "olivia",
            "-o",
            "json",
        ],
        Some(&change),
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v = json(&out.stdout);
    let ops: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["operation"].as_str().unwrap(),
            )
        })
        .collect();
    // Only the changed objects are checked; olivia-owner is context now.
    assert_eq!(
        ops,
        [("limited-administrators", "UPDATE"), ("new-hire", "CREATE")]
    );
    // John may neither edit the group nor add members to analytics-viewers.
    let out = run_with(
        &["check", "-", "--existing", "examples", "--as", "john"],
        Some(&change),
    );
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains(
        "Group default/limited-administrators denied: [RequiredPrivileges] metadata.name: 'john' (member john-smith) needs Organization/Groups: Custom (limited-administrators Edit) to allow editing group 'limited-administrators'"
    ), "{}", out.stdout);
}

/// Header lines of a corpus file: `# requester:`, `# target:`, `# expect:`.
fn header(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .unwrap_or_else(|| panic!("{} has no '# {key}:' line", path.display()))
        .to_string()
}

fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// `tests/golden/warn/`: manifests the rules allow with a warning, the same
/// the webhook sends (kubectl's `Warning:`; tests/webhook/agreement.rs compares).
#[test]
fn warned_manifests_are_allowed_with_the_webhook_warnings() {
    for path in corpus("warn") {
        let rel = path.strip_prefix(root()).unwrap().to_str().unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(header(&path, "requester"), "trusted", "{rel}");
        let out = run(&["check", rel]);
        assert_eq!(
            out.code, 0,
            "{rel}: warnings do not fail a check: {}",
            out.stdout
        );
        golden(&format!("warn/{stem}.txt"), &out.stdout);

        let (kind, qualified) = header(&path, "target")
            .split_once(' ')
            .map(|(k, q)| (k.to_string(), q.to_string()))
            .unwrap();
        let field = header(&path, "expect")
            .strip_prefix("Warning ")
            .unwrap_or_else(|| panic!("{rel}: '# expect: Warning FIELD'"))
            .to_string();
        let findings = json(&run(&["check", rel, "-o", "json"]).stdout);
        let target = findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                format!(
                    "{}/{}",
                    f["namespace"].as_str().unwrap(),
                    f["name"].as_str().unwrap()
                ) == qualified
                    && f["kind"] == kind.as_str()
            })
            .unwrap_or_else(|| panic!("{rel}: no entry for the target"));
        assert_eq!(target["allowed"], true, "{rel}");
        let warnings = target["warnings"].as_array().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().starts_with(&format!("{field}: "))),
            "{rel}: no warning on {field}: {warnings:?}"
        );
    }
}

#[test]
fn bad_manifests_are_denied_with_the_webhook_message() {
    for path in corpus("bad") {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let requester = header(&path, "requester");
        let mut args = vec!["check".to_string(), rel.clone()];
        if requester != "trusted" {
            args.extend(requester.split_whitespace().map(str::to_string));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();

        let out = run(&argv);
        assert_eq!(out.code, 1, "{rel}: {}", out.stdout);
        golden(&format!("bad/{stem}.txt"), &out.stdout);

        // The target is denied by the expected rule, on the expected field,
        // with the message printed verbatim in the human output.
        let (kind, qualified) = header(&path, "target")
            .split_once(' ')
            .map(|(k, q)| (k.to_string(), q.to_string()))
            .unwrap();
        let (ns, name) = qualified.split_once('/').unwrap();
        let expect = header(&path, "expect");
        let (rule, field) = expect.trim_start_matches('[').split_once("] ").unwrap();
        let mut json_args = argv.clone();
        json_args.extend(["-o", "json"]);
        let v = json(&run(&json_args).stdout);
        let target: Vec<&serde_json::Value> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind.as_str() && f["namespace"] == ns && f["name"] == name)
            .collect();
        assert!(
            target
                .iter()
                .any(|f| f["allowed"] == false && f["rule"] == rule && f["field"] == field),
            "{rel}: expected [{rule}] {field} on {kind} {qualified}, got {target:#?}"
        );
        let message = target[0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{kind} {qualified} denied: ")),
            "{message}"
        );
        assert!(
            out.stdout
                .lines()
                .any(|l| l.ends_with(&format!(": {message}"))),
            "{rel}: the human output does not carry the denial verbatim"
        );
    }
}

#[test]
fn invalid_manifests_name_the_file_and_document() {
    for path in corpus("invalid") {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let out = run(&["check", &rel]);
        assert_eq!(out.code, 1, "{rel}: {}", out.stdout);
        assert!(
            out.stdout
                .lines()
                .next()
                .unwrap()
                .starts_with(&format!("{rel}:")),
            "{rel}: {}",
            out.stdout
        );
        golden(&format!("invalid/{stem}.txt"), &out.stdout);
        let v = json(&run(&["check", &rel, "-o", "json"]).stdout);
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .any(|f| f["allowed"] == false && f["file"] == rel.as_str())
        );
    }
}

#[test]
fn a_missing_path_is_an_error() {
    let out = run(&["check", "examples", "no/such/file.yaml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout
            .starts_with("no/such/file.yaml: cannot read: No such file or directory"),
        "{}",
        out.stdout
    );
    let out = run(&["explain", "member", "john-smith", "-f", "no/such/dir"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no/such/dir"), "{}", out.stderr);
}

#[test]
fn check_needs_a_path() {
    let out = run(&["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("<PATH>"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------

#[test]
fn explain_member_john_smith_is_the_seed_table() {
    let out = run(&["explain", "member", "john-smith", "-f", "examples"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("explain-member-john-smith.txt", &out.stdout);
    for (domain, level) in [
        ("Analytics/Administrate", "Allowed"),
        ("Analytics/DataExports", "Edit"),
        ("Analytics/Dimensions", "Edit"),
        ("Analytics/Impersonate", "Allowed"),
        ("Analytics/NamedFilters", "View"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(domain))
            .unwrap_or_else(|| panic!("no row for {domain}"));
        assert_eq!(line.split_whitespace().nth(1), Some(level), "{line}");
    }

    let out = run(&[
        "explain",
        "member",
        "john-smith",
        "-f",
        "examples",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0);
    golden("explain-member-john-smith.json", &out.stdout);
    let v = json(&out.stdout);
    assert_eq!(v["phase"], "Active");
    let administrate = v["privileges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["domain"] == "Administrate")
        .unwrap();
    assert_eq!(administrate["grantedBy"][0], "limited-administrators");
}

#[test]
fn explain_api_key_and_group() {
    let out = run(&["explain", "apikey", "public-search", "-f", "examples"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("explain-apikey-public-search.txt", &out.stdout);
    let out = run(&[
        "explain",
        "group",
        "limited-administrators",
        "-f",
        "examples",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("explain-group-limited-administrators.txt", &out.stdout);
}

#[test]
fn explain_a_pending_member_shows_no_privileges() {
    let out = run(&["explain", "member", "vendor-dev", "-f", "examples"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Pending (invitation not accepted)"));
    assert!(
        out.stdout
            .contains("sitecore-integrator (invitation, inactive)")
    );
    assert!(out.stdout.contains("No effective privileges"));
}

/// Without Organization/Organization: View a member cannot open the
/// administration console; explain says so and still lists the privileges.
#[test]
fn explain_a_member_without_organization_view_says_no_console() {
    let manifests = "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: acme, namespace: acme}\nspec: {displayName: ACME}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: api-only, namespace: acme}\nspec:\n  privileges:\n    - {service: Search, domain: ExecuteQueries, level: Allowed}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {name: robot, namespace: acme}\nspec:\n  identity: {provider: Email, username: robot@acme.example}\n  groups: [api-only]\n  accepted: true\n";
    let out = run_with(&["explain", "member", "robot", "-f", "-"], Some(manifests));
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("explain-member-without-console.txt", &out.stdout);
    assert!(
        out.stdout
            .contains("Console:  no (no group grants Organization/Organization: View")
    );
    assert!(
        out.stdout.contains("Search/ExecuteQueries"),
        "privileges still listed"
    );
    let out = run_with(
        &["explain", "member", "robot", "-f", "-", "-o", "json"],
        Some(manifests),
    );
    let v = json(&out.stdout);
    assert_eq!(v["consoleAccess"]["allowed"], false);
    assert_eq!(v["consoleAccess"]["reason"], "MissingOrganizationView");
    assert_eq!(v["privileges"].as_array().unwrap().len(), 1);
}

#[test]
fn explain_an_unknown_name_lists_the_known_ones() {
    let out = run(&["explain", "member", "nobody", "-f", "examples"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("no Member 'nobody'")
            && out
                .stderr
                .contains("ada-atlassian, john-smith, olivia-owner, vendor-dev"),
        "{}",
        out.stderr
    );
}

#[test]
fn questions_refuse_invalid_manifests() {
    let out = run(&[
        "explain",
        "member",
        "john-smith",
        "-f",
        "examples",
        "-f",
        "tests/golden/invalid/invalid-yaml.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("tests/golden/invalid/invalid-yaml.yaml:8: invalid YAML"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// who-can
// ---------------------------------------------------------------------------

#[test]
fn who_can_edit_the_jira_source() {
    let out = run(&["who-can", "edit", "Content/Sources/jira", "-f", "examples"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("who-can-edit-content-sources-jira.txt", &out.stdout);
    let out = run(&[
        "who-can",
        "edit",
        "content/sources/jira",
        "-f",
        "examples",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0);
    golden("who-can-edit-content-sources-jira.json", &out.stdout);
    let v = json(&out.stdout);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    // vendor-dev's Full access group would, but the invitation is pending.
    assert_eq!(names, ["ada-atlassian", "olivia-owner"]);
}

#[test]
fn who_can_answers_for_api_keys_and_abilities() {
    let out = run(&[
        "who-can",
        "allowed",
        "Search/ExecuteQueries",
        "-f",
        "examples",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0);
    let v = json(&out.stdout);
    let key = v
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "ApiKey")
        .expect("the public search key executes queries");
    assert_eq!(key["through"][0], "template AnonymousSearch");
    let out = run(&["who-can", "create", "Organization/Groups", "-f", "examples"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("olivia-owner"));
    assert!(!out.stdout.contains("john-smith"));
}

#[test]
fn who_can_rejects_bad_targets_with_a_hint() {
    for (verb, target, want) in [
        ("edit", "Content/Sourcez", "did you mean 'Sources'?"),
        ("edit", "Nope/Sources", "unknown service 'Nope'"),
        ("edit", "Content/Fields/title", "has no per-resource levels"),
        ("allowed", "Content/Sources", "does not offer Allowed"),
        ("edit", "Content", "is not SERVICE/DOMAIN"),
    ] {
        let out = run(&["who-can", verb, target, "-f", "examples"]);
        assert_eq!(out.code, 2, "{target}");
        assert!(out.stderr.contains(want), "{target}: {}", out.stderr);
    }
}

#[test]
fn questions_about_several_namespaces_need_one_named() {
    let out = run(&[
        "who-can",
        "view",
        "Content/Sources",
        "-f",
        "examples",
        "-f",
        "tests/golden/bad/unknown-domain.yaml",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("several namespaces (acme, default)"),
        "{}",
        out.stderr
    );
    let out = run(&[
        "who-can",
        "view",
        "Content/Sources",
        "-f",
        "tests/golden/bad/builtin-set-by-user.yaml",
        "-n",
        "acme",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// duplicate
// ---------------------------------------------------------------------------

#[test]
fn duplicate_limited_administrators() {
    let out = run(&[
        "duplicate",
        "group",
        "limited-administrators",
        "-f",
        "examples",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden("duplicate-group-limited-administrators.yaml", &out.stdout);

    // The copy is admitted next to the organization, and Olivia (an
    // administrator) strictly out-ranks the source.
    let mut all = String::new();
    for f in ["00-organization.yaml", "10-groups.yaml", "20-members.yaml"] {
        all.push_str("---\n");
        all.push_str(&std::fs::read_to_string(root().join("examples").join(f)).unwrap());
    }
    all.push_str("---\n");
    all.push_str(&out.stdout);
    let check = run_with(&["check", "-", "--as", "olivia", "-o", "json"], Some(&all));
    let v = json(&check.stdout);
    let copy = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "limited-administrators-copy")
        .expect("the copy is checked");
    assert_eq!(copy["allowed"], true, "{copy}");
}

/// Seed 001: "You can however duplicate the Administrators group, and then
/// edit the privilege set of the new group." An administrator (holding
/// exactly its privileges) duplicates it; John, a limited administrator, may
/// not (docs/rules.md, "Duplicate").
#[test]
fn an_administrator_duplicates_administrators_and_a_limited_one_cannot() {
    let out = run(&[
        "duplicate",
        "group",
        "administrators",
        "-f",
        "examples",
        "--name",
        "admins-2",
        "--as",
        "olivia",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("duplicateOf: administrators"),
        "{}",
        out.stdout
    );
    let out = run(&[
        "duplicate",
        "group",
        "administrators",
        "-f",
        "examples",
        "--name",
        "admins-2",
        "--as",
        "john",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("Group default/admins-2 denied: [Duplicate] spec.duplicateOf"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("may duplicate the Administrators group only holding every privilege it holds; you lack:"),
        "{}",
        out.stderr
    );
    // As a trusted principal the built-in group (seeded implicitly) is copied.
    let out = run(&["duplicate", "group", "administrators", "-f", "examples"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("displayName: Administrators_copy"));
    assert!(out.stdout.contains("template: Administrators"));
    assert!(!out.stdout.contains("builtIn"));
}

#[test]
fn duplicate_refuses_an_existing_name() {
    let out = run(&[
        "duplicate",
        "group",
        "limited-administrators",
        "-f",
        "examples",
        "--name",
        "sitecore-integrator",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// From the cluster
// ---------------------------------------------------------------------------

/// The questions read a namespace from the cluster (no -f) with the same
/// answers as offline. The control plane runs no operator, so the built-in
/// groups the operator would seed are created here.
#[tokio::test]
async fn questions_read_the_cluster_like_the_manifests() {
    use support::{ADMIN, assert_success, kubectl, kubectl_stdin, plane};

    let crds = run(&["crds"]).stdout;
    let out = kubectl_stdin(
        ADMIN,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&crds),
    )
    .await;
    assert_success("apply the CRDs", &out);
    let out = kubectl(
        ADMIN,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/groups.orgaccess.dev",
            "crd/members.orgaccess.dev",
            "crd/apikeys.orgaccess.dev",
            "crd/organizations.orgaccess.dev",
        ],
    )
    .await;
    assert_success("wait for the CRDs", &out);
    let ns = support::fresh_namespace(&support::admin_client().await).await;
    let mut builtins = String::new();
    for (name, builtin) in [
        ("administrators", "Administrators"),
        ("analytics-viewers", "AnalyticsViewers"),
    ] {
        builtins.push_str(&format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: {name}}}\nspec: {{builtIn: {builtin}, template: {builtin}}}\n"
        ));
    }
    let out = kubectl_stdin(ADMIN, &["apply", "-n", &ns, "-f", "-"], Some(&builtins)).await;
    assert_success("create the built-in groups", &out);
    let examples = root().join("examples");
    let out = kubectl(
        ADMIN,
        &["apply", "-n", &ns, "-f", examples.to_str().unwrap()],
    )
    .await;
    assert_success("apply the examples", &out);

    let kubeconfig = plane().kubeconfig_for(ADMIN);
    let cluster = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--namespace", ns.as_str()]);
        run_env(&all, None, Some(&kubeconfig))
    };
    let offline = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", "examples"]);
        run(&all).stdout.replace("default/", &format!("{ns}/"))
    };
    for q in [
        &["explain", "member", "john-smith"][..],
        &["explain", "apikey", "public-search"],
        &["who-can", "edit", "Content/Sources/jira"],
        &["duplicate", "group", "limited-administrators"],
    ] {
        let out = cluster(q);
        assert_eq!(out.code, 0, "{q:?}: {}", out.stderr);
        let expected = offline(q)
            .replace("in namespace default", &format!("in namespace {ns}"))
            .replace(
                "metadata:\n  name: limited-administrators-copy\n",
                &format!("metadata:\n  name: limited-administrators-copy\n  namespace: {ns}\n"),
            );
        assert_eq!(out.stdout, expected, "{q:?}");
    }
    // Export reads the cluster like the manifests: the same groups (with
    // their members and invitations) and API keys, descriptions included.
    // (The examples' Sitecore integrator holds Full access, whose Customer
    // Service names are inferred: written only with --allow-inferred.)
    let out = cluster(&["export", "--allow-inferred"]);
    assert_eq!(out.code, 0, "export: {}", out.stderr);
    let from_cluster: orgaccess::core::platform::PlatformOrganization =
        serde_json::from_str(&out.stdout).unwrap();
    let exported: orgaccess::core::platform::PlatformOrganization =
        serde_json::from_str(&run(&["export", "-f", "examples", "--allow-inferred"]).stdout)
            .unwrap();
    assert_eq!(
        from_cluster.groups.len(),
        6,
        "four groups and two built-in ones"
    );
    for g in &from_cluster.groups {
        let o = exported.groups.iter().find(|o| o.id == g.id).unwrap();
        assert_eq!(g, o, "group {}", g.id);
    }
    assert_eq!(from_cluster.api_keys, exported.api_keys);
    assert!(from_cluster.api_keys[0].description.is_some());
    let out = cluster(&["explain", "member", "nobody"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains(&format!("no Member 'nobody' in namespace {ns}"))
    );

    // --kubeconfig and --context as kubectl takes them (before or after the
    // command): a kubeconfig whose current context leads nowhere, and a
    // context whose namespace is the organization's, so no -n is needed.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let admin = config["contexts"][0]["context"].clone();
    let mut here = admin.clone();
    here["namespace"] = serde_json::json!(ns);
    config["clusters"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}));
    let mut nowhere = admin;
    nowhere["cluster"] = serde_json::json!("nowhere");
    config["contexts"] = serde_json::json!([
        {"name": "nowhere", "context": nowhere},
        {"name": "orgaccess-test", "context": here},
    ]);
    config["current-context"] = serde_json::json!("nowhere");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, config.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let q = ["who-can", "edit", "Content/Sources/jira"];
    let expected = offline(&q).replace("in namespace default", &format!("in namespace {ns}"));
    for args in [
        vec![
            "--kubeconfig",
            file,
            "--context",
            "orgaccess-test",
            q[0],
            q[1],
            q[2],
        ],
        vec![
            q[0],
            q[1],
            q[2],
            "--context",
            "orgaccess-test",
            "--kubeconfig",
            file,
        ],
    ] {
        let out = run(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, expected, "{args:?}");
    }
    // Failures, without kube's own log lines (which are not the CLI's output).
    let failing = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orgaccess"))
            .args(args)
            .env("ORGACCESS_LOG", "off")
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = failing(&["--kubeconfig", file, q[0], q[1], q[2], "-n", &ns]);
    assert_eq!(code, Some(2), "the current context leads nowhere: {err}");
    assert!(err.contains("Connection refused"), "{err}");
    let (code, err) = failing(&[
        "--kubeconfig",
        file,
        "--context",
        "missing",
        q[0],
        q[1],
        q[2],
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing"), "{err}");
}

/// `-o json` and `-o yaml` are one document in two syntaxes, for every
/// command that prints data.
#[test]
fn json_and_yaml_outputs_are_the_same_document() {
    for q in [
        &["catalog"][..],
        &["check", "examples"],
        &["explain", "member", "john-smith", "-f", "examples"],
        &["explain", "apikey", "public-search", "-f", "examples"],
        &[
            "explain",
            "group",
            "limited-administrators",
            "-f",
            "examples",
        ],
        &["who-can", "edit", "Content/Sources/jira", "-f", "examples"],
        &[
            "duplicate",
            "group",
            "limited-administrators",
            "-f",
            "examples",
        ],
        &["export", "-f", "examples", "--allow-inferred"],
    ] {
        let with = |format: &str| {
            let mut args = q.to_vec();
            args.extend(["-o", format]);
            let out = run(&args);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            out.stdout
        };
        let json: serde_json::Value =
            serde_json::from_str(&with("json")).unwrap_or_else(|e| panic!("{q:?} -o json: {e}"));
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&with("yaml")).unwrap_or_else(|e| panic!("{q:?} -o yaml: {e}"));
        assert_eq!(json, yaml, "{q:?}");
        assert!(!json.is_null(), "{q:?}");
    }
    let catalog = json(&run(&["catalog", "-o", "json"]).stdout);
    assert_eq!(
        catalog.as_array().unwrap().len(),
        orgaccess::core::catalog::CATALOG.len()
    );
    let reports = catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "Analytics" && r["domain"] == "Reports")
        .unwrap();
    assert_eq!(reports["canCreate"], "withEdit", "{reports}");
}

/// `orgaccess completion SHELL` prints a script that completes the commands.
#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completion", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        for word in ["orgaccess", "who-can", "explain", "kubeconfig", "context"] {
            assert!(out.stdout.contains(word), "{shell}: no {word}");
        }
    }
    assert_eq!(run(&["completion", "powershell"]).code, 2);
}

/// Installed on the PATH as `kubectl-orgaccess`, the binary is a kubectl
/// plugin: `kubectl orgaccess catalog` is `orgaccess catalog`.
#[test]
fn kubectl_runs_it_as_a_plugin() {
    let kubectl = orgaccess_testenv::default_bin_dir().join("kubectl");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_orgaccess"),
        dir.path().join("kubectl-orgaccess"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&kubectl)
        .args(["orgaccess", "catalog", "-o", "json"])
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", kubectl.display()));
    assert!(
        out.status.success(),
        "kubectl orgaccess catalog: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        run(&["catalog", "-o", "json"]).stdout
    );
}

/// `can-i` answers yes for exactly the principals `who-can` lists (who-can
/// is a listing of can-i's decisions), with the same grants, over the
/// examples' members and keys and targets of every verb; and it exits like
/// `kubectl auth can-i`: 0 yes, 1 no.
#[test]
fn can_i_and_who_can_agree() {
    let targets = [
        ("edit", "Content/Sources/jira"),
        ("view", "Content/Sources"),
        ("allowed", "Search/ExecuteQueries"),
        ("edit", "Organization/Groups"),
        ("create", "Organization/Groups"),
        ("push", "Analytics/AnalyticsData"),
        ("view", "Organization/Organization"),
    ];
    let principals = [
        ("--member", "john-smith"),
        ("--member", "ada-atlassian"),
        ("--member", "vendor-dev"),
        ("--member", "olivia-owner"),
        ("--api-key", "public-search"),
    ];
    let (mut yes, mut no) = (0, 0);
    for (verb, target) in targets {
        let listed = run(&["who-can", verb, target, "-f", "examples", "-o", "json"]);
        assert_eq!(listed.code, 0, "{}", listed.stderr);
        let holders: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
        for (flag, name) in principals {
            let out = run(&[
                "can-i", verb, target, flag, name, "-f", "examples", "-o", "json",
            ]);
            let answer: serde_json::Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("{verb} {target} {name}: {e}: {}", out.stderr));
            let holder = holders.iter().find(|h| h["name"] == name);
            let allowed = answer["allowed"] == true;
            assert_eq!(
                out.code,
                if allowed { 0 } else { 1 },
                "{verb} {target} {name}"
            );
            assert_eq!(
                allowed,
                holder.is_some(),
                "{verb} {target} {name}: {answer}"
            );
            if let Some(h) = holder {
                assert_eq!(h["through"], answer["grantedBy"], "{verb} {target} {name}");
                yes += 1;
            } else {
                no += 1;
            }
        }
    }
    assert!(
        yes > 3 && no > 3,
        "both answers exercised: {yes} yes, {no} no"
    );
    let bad = run(&[
        "can-i",
        "edit",
        "Content/Sourcez",
        "--member",
        "john-smith",
        "-f",
        "examples",
    ]);
    assert_eq!(bad.code, 2, "an unknown target is an error, not a no");
    let none = run(&["can-i", "edit", "Content/Sources", "-f", "examples"]);
    assert_eq!(none.code, 2, "a principal is required: {}", none.stderr);
}

/// The examples' Sitecore integrator group, which removes Groups from full
/// access, raises no Groups Edit finding for its member; the same integrator
/// added to Administrators does (Groups Edit for the smallest possible number
/// of people, docs/cli.md). Exit codes by severity.
#[test]
fn advise_follows_the_seeds_examples() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |extra: &str| {
        for entry in std::fs::read_dir(root().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue; // examples/install/: the operator's own delivery
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The integrator has accepted the invitation.
            let text = text.replace(
                "groups: [sitecore-integrator]",
                &format!("groups: [sitecore-integrator{extra}]\n  accepted: true"),
            );
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    };
    let findings = |out: &Out| -> Vec<serde_json::Value> {
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        report["findings"].as_array().unwrap().clone()
    };
    let path = dir.path().to_str().unwrap().to_string();

    copy("");
    let out = run(&["advise", "-f", &path, "-o", "json"]);
    assert_eq!(out.code, 0, "no critical finding: {}", out.stderr);
    assert!(
        !findings(&out)
            .iter()
            .any(|f| f["id"] == "groups-edit-holders"),
        "{}",
        out.stdout
    );

    copy(", administrators");
    let out = run(&["advise", "-f", &path, "-o", "json", "--fail-on", "warning"]);
    let all = findings(&out);
    let edit = all
        .iter()
        .find(|f| f["id"] == "groups-edit-holders")
        .unwrap_or_else(|| panic!("no Groups Edit finding: {}", out.stdout));
    assert!(
        edit["objects"]
            .as_array()
            .unwrap()
            .contains(&"Member/vendor-dev".into())
    );
    assert_eq!(
        edit["source"],
        "Manage member access (docs/sources.md, seed 001)"
    );
    assert_eq!(out.code, 1, "a warning fails --fail-on warning");
    let off = run(&[
        "advise",
        "-f",
        &path,
        "-o",
        "json",
        "--fail-on",
        "warning",
        "--disable",
        "groups-edit-holders",
        "--disable",
        "unresolved-reference",
        "--disable",
        "console-without-organization-view",
        "--disable",
        "administrator-equivalent",
    ]);
    assert!(
        !findings(&off)
            .iter()
            .any(|f| f["id"] == "groups-edit-holders")
    );
    let unknown = run(&["advise", "-f", &path, "--disable", "no-such-finding"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("unknown finding 'no-such-finding'"));

    // The Organization's own settings, as the operator reads them: the
    // finding switched off with a reason, or a threshold that allows two.
    let org = dir.path().join("00-organization.yaml");
    let text = std::fs::read_to_string(&org).unwrap();
    for advice in [
        "  advice:\n    disabled:\n      - {finding: groups-edit-holders, reason: the pilot integrator (SEC-42)}\n",
        "  advice: {groupsEditMaxHolders: 2}\n",
    ] {
        std::fs::write(&org, format!("{text}{advice}")).unwrap();
        let out = run(&["advise", "-f", &path, "-o", "json"]);
        assert!(
            !findings(&out)
                .iter()
                .any(|f| f["id"] == "groups-edit-holders"),
            "{advice}: {}",
            out.stdout
        );
        // The flags still override the Organization.
        let out = run(&[
            "advise",
            "-f",
            &path,
            "-o",
            "json",
            "--groups-edit-max",
            "0",
        ]);
        let flagged = findings(&out)
            .iter()
            .any(|f| f["id"] == "groups-edit-holders");
        assert_eq!(flagged, !advice.contains("disabled"), "{advice}");
    }
}

/// `advise --unused-key-days`: live keys whose `status.lastUsedAt` (or,
/// never used, creation) is older than the threshold; asked for only.
#[test]
fn advise_finds_unused_keys_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue; // examples/install/: the operator's own delivery
        }
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let now = jiff::Timestamp::now();
    let ago = |days: i64| (now - jiff::SignedDuration::from_hours(24 * days)).to_string();
    let key = |name: &str, created: i64, used: Option<i64>| {
        let status = used
            .map(|d| format!("status:\n  lastUsedAt: \"{}\"\n", ago(d)))
            .unwrap_or_default();
        format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata:\n  name: {name}\n  creationTimestamp: \"{}\"\nspec:\n  displayName: {name}\n  template: Custom\n  lifetime: P365D\n{status}",
            ago(created)
        )
    };
    let keys = [
        key("stale-key", 200, Some(45)),
        key("fresh-key", 200, Some(1)),
        key("never-key", 50, None),
        key("young-key", 5, None),
    ]
    .concat();
    std::fs::write(dir.path().join("40-more-keys.yaml"), keys).unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let unused = |args: &[&str]| -> Vec<String> {
        let out = run(&[&["advise", "-f", &path, "-o", "json"], args].concat());
        assert_ne!(out.code, 2, "{}", out.stderr);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "key-unused")
            .map(|f| f["objects"][0].as_str().unwrap().to_string())
            .collect()
    };
    assert!(unused(&[]).is_empty(), "not asked for");
    assert_eq!(
        unused(&["--unused-key-days", "30"]),
        ["ApiKey/never-key", "ApiKey/stale-key"]
    );
    assert!(unused(&["--unused-key-days", "60"]).is_empty());
}

/// `advise`: memberships of an elevated group that never end, or end beyond
/// the threshold, are one finding per group naming them; a membership
/// ending soon is none; the threshold is a flag.
#[test]
fn advise_finds_long_lived_elevated_memberships() {
    let dir = tempfile::tempdir().unwrap();
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 20)).to_string();
    let manifest = format!(
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata:\n  name: access-admins\nspec:\n  privileges:\n  - {{service: Organization, domain: Groups, level: Edit}}\n  - {{service: Organization, domain: Organization, level: View}}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata:\n  name: readers\nspec:\n  privileges:\n  - {{service: Organization, domain: Groups, level: View}}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata:\n  name: forever\nspec:\n  identity: {{provider: Email, username: forever@example.com}}\n  accepted: true\n  groups: [access-admins, readers]\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata:\n  name: contractor\nspec:\n  identity: {{provider: Email, username: contractor@example.com}}\n  accepted: true\n  groups: [access-admins]\n  until: \"{soon}\"\n"
    );
    std::fs::write(dir.path().join("org.yaml"), manifest).unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let found = |args: &[&str]| -> Vec<Vec<String>> {
        let out = run(&[&["advise", "-f", &path, "-o", "json"], args].concat());
        assert_ne!(out.code, 2, "{}", out.stderr);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "long-lived-elevated-membership")
            .map(|f| serde_json::from_value(f["objects"].clone()).unwrap())
            .collect()
    };
    assert_eq!(found(&[]), [["Group/access-admins", "Member/forever"]]);
    assert_eq!(
        found(&["--elevated-membership-max-days", "10"]),
        [["Group/access-admins", "Member/contractor", "Member/forever"]]
    );
    assert!(found(&["--disable", "long-lived-elevated-membership"]).is_empty());
}
