//! The access map (`orgaccess report --html`) in a real browser: headless
//! Chromium driven over WebDriver (`webdriver.rs`) loads the page from
//! `examples/` (plus an access list, a disabled key and hostile names), finds
//! no console error and no Content-Security-Policy violation, reads every
//! cell's level and what grants it from the page (through the page's own
//! hover and keyboard paths) and compares them with `orgaccess explain
//! member|apikey NAME -o json` and `orgaccess who-can VERB TARGET -o json`,
//! run separately; then the keyboard, the filter, a screenshot
//! (`target/artifacts/access-map.png`, a CI artifact), and an organization
//! of 1,000 members.

use crate::runner::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::webdriver::{ARROW_DOWN, ARROW_RIGHT, Browser, TAB};

/// Runs the built binary; its standard output, or a panic with its error.
pub(crate) fn orgaccess(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orgaccess"))
        .args(args)
        .current_dir(root())
        .env("ORGACCESS_LOG", "warn")
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "orgaccess {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Besides `examples/`: an access list naming a key and a group, a disabled
/// key, and names that would be markup if the page did not escape them.
const EXTRA: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata:
  name: group-auditors
spec:
  displayName: "Auditors <img src=x onerror=\"document.title='pwned'\">"
  privileges:
    - {service: Organization, domain: Organization, level: View}
  access:
    - {apiKey: public-search, level: View}
    - {group: atlassian-administrators, level: View}
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata:
  name: mallory
spec:
  identity: {provider: SingleSignOn, username: "<img/src=x/onerror=document.title='pwned'>"}
  groups: [group-auditors]
  accepted: true
---
apiVersion: orgaccess.dev/v1alpha1
kind: ApiKey
metadata:
  name: ci-deployer
spec:
  displayName: "</script><script>document.title='pwned'</script>"
  template: Custom
  enabled: false
  lifetime: P30D
  privileges:
    - {service: Content, domain: Fields, level: Edit}
  allowedIps: [10.0.0.0/8]
  deniedIps: [10.9.0.0/16]
"#;

/// Records Content-Security-Policy violations from the first script on.
pub(crate) const CSP_LISTENER: &str = "window.__violations = []; document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));";

/// Every row of the matrix, each cell as the page shows it: its words, and
/// the details panel's level, grants and resources after the page's own
/// hover handler ran on it. `arguments[0]`: only these row names (all when null).
pub(crate) const READ_CELLS: &str = r#"
const only = arguments[0];
const table = document.getElementById('map');
const details = document.getElementById('details');
const cols = Array.from(table.querySelectorAll('thead .dom th'), (th) => th.dataset.d);
const out = [];
for (const tb of table.tBodies) {
  for (const tr of tb.rows) {
    if (tr.cells.length < 2) continue;
    const name = tr.querySelector('th .n').textContent;
    if (only && !only.includes(name)) continue;
    const row = {kind: tb.dataset.kind, name, phase: tr.dataset.ph, cells: {}};
    for (const td of Array.from(tr.cells).slice(1)) {
      td.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
      row.cells[cols[td.cellIndex - 1]] = {
        text: td.lastChild.textContent,
        level: details.querySelector('.level').textContent,
        granted: Array.from(details.querySelectorAll('ul.granted li'), (li) => li.textContent),
        resources: Array.from(details.querySelectorAll('ul.resources li'), (li) => li.textContent),
      };
    }
    out.push(row);
  }
}
return out;
"#;

/// One cell as the core answers it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub(crate) struct Expected {
    pub level: String,
    pub granted: Vec<String>,
    pub resources: Vec<String>,
}

fn none() -> Expected {
    Expected {
        level: "None".into(),
        granted: vec![],
        resources: vec![],
    }
}

/// `explain member|apikey NAME -o json`: its privileges by `Service/Domain`.
fn explained(files: &[&str], kind: &str, name: &str) -> BTreeMap<String, Expected> {
    let sub = if kind == "ApiKey" { "apikey" } else { "member" };
    let mut args = vec!["explain", sub, name, "-o", "json"];
    for f in files {
        args.extend(["-f", f]);
    }
    let v: Value = serde_json::from_str(&orgaccess(&args)).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    v["privileges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p["service"].as_str().unwrap(),
                p["domain"].as_str().unwrap()
            );
            let resources = p["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["name"].as_str().unwrap(),
                        r["level"].as_str().unwrap()
                    )
                })
                .collect();
            let e = Expected {
                level: p["level"].as_str().unwrap().to_string(),
                granted: strings(&p["grantedBy"]),
                resources,
            };
            (key, e)
        })
        .collect()
}

/// The page's rows as read by [`READ_CELLS`].
pub(crate) fn rows(page: &Value) -> Vec<(String, String, String, BTreeMap<String, Expected>)> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let cells = r["cells"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(d, c)| {
                    let list = |k: &str| -> Vec<String> {
                        c[k].as_array()
                            .unwrap()
                            .iter()
                            .map(|s| s.as_str().unwrap().to_string())
                            .collect()
                    };
                    let text = c["text"].as_str().unwrap();
                    let level = c["level"].as_str().unwrap();
                    // The cell's words and the details' level are one fact.
                    let level = if text == level {
                        level.to_string()
                    } else {
                        format!("{text} (details: {level})")
                    };
                    (
                        d.clone(),
                        Expected {
                            level,
                            granted: list("granted"),
                            resources: list("resources"),
                        },
                    )
                })
                .collect();
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["phase"].as_str().unwrap().to_string(),
                cells,
            )
        })
        .collect()
}

/// Every disagreement between the page's cells and `explain`.
pub(crate) fn disagreements(page: &Value, files: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, name, _, cells) in rows(page) {
        let core = explained(files, &kind, &name);
        assert!(cells.len() >= 50, "{name}: {} columns", cells.len());
        for key in core.keys() {
            if !cells.contains_key(key) {
                out.push(format!("{kind} {name}: no column for {key}"));
            }
        }
        for (d, shown) in &cells {
            let want = core.get(d).cloned().unwrap_or_else(none);
            if *shown != want {
                out.push(format!(
                    "{kind} {name} {d}: page {shown:?}, explain {want:?}"
                ));
            }
        }
    }
    out
}

/// Who the page says can do `verb` on `target`, from the cells' words alone:
/// active rows whose level on the domain covers the verb (a resource through
/// Custom's per-resource list).
fn page_can(page: &Value, verb: &str, target: &str) -> BTreeSet<(String, String)> {
    let parts: Vec<&str> = target.split('/').collect();
    let domain = format!("{}/{}", parts[0], parts[1]);
    rows(page)
        .into_iter()
        .filter(|(_, _, phase, cells)| {
            let c = &cells[&domain];
            let on = |level: &str| {
                parts.get(2).is_some_and(|r| {
                    c.level == "Custom" && c.resources.iter().any(|x| *x == format!("{r} {level}"))
                })
            };
            phase == "Active"
                && match verb {
                    "view" => {
                        ["View", "Edit", "PushAndView"].contains(&c.level.as_str())
                            || on("View")
                            || on("Edit")
                    }
                    "edit" => c.level == "Edit" || on("Edit"),
                    "allowed" => c.level == "Allowed",
                    "push" => ["Push", "PushAndView"].contains(&c.level.as_str()),
                    _ => unreachable!(),
                }
        })
        .map(|(kind, name, ..)| (kind, name))
        .collect()
}

fn who_can(files: &[&str], verb: &str, target: &str) -> BTreeSet<(String, String)> {
    let mut args = vec!["who-can", verb, target, "-o", "json"];
    for f in files {
        args.extend(["-f", f]);
    }
    let v: Value = serde_json::from_str(&orgaccess(&args)).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap().to_string(),
                h["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Console errors and warnings (chromedriver's SEVERE and WARNING) and CSP violations.
pub(crate) async fn problems(b: &Browser) -> Vec<String> {
    let mut out: Vec<String> = b
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] != json!("INFO") && e["level"] != json!("DEBUG"))
        .map(|e| {
            format!(
                "console {}: {}",
                e["level"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let v = b
        .exec("return window.__violations || ['no listener'];", json!([]))
        .await;
    out.extend(
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| format!("CSP violation: {}", s.as_str().unwrap_or("?"))),
    );
    out
}

pub(crate) fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

#[tokio::test]
async fn the_access_map_agrees_with_explain_and_who_can_in_a_browser() {
    let work = tempfile::tempdir().unwrap();
    let extra = work.path().join("extra.yaml");
    std::fs::write(&extra, EXTRA).unwrap();
    let extra = extra.to_str().unwrap().to_string();
    let files = [
        "examples/00-organization.yaml",
        "examples/10-groups.yaml",
        "examples/20-members.yaml",
        "examples/30-apikeys.yaml",
        extra.as_str(),
    ];
    let page_path = work.path().join("access-map.html");
    let mut args = vec!["report", "--html-file", page_path.to_str().unwrap()];
    for f in &files {
        args.extend(["-f", f]);
    }
    orgaccess(&args);

    let b = Browser::start(work.path()).await;
    b.before_each_document(CSP_LISTENER).await;
    b.goto(&file_url(&page_path)).await;
    let loaded = problems(&b).await;
    assert!(
        loaded.is_empty(),
        "the page logged problems on load: {loaded:#?}"
    );
    assert_eq!(
        b.exec("return document.title;", json!([])).await,
        json!("Access map: namespace default")
    );

    // The page does not scroll sideways: only the matrix does, in its box.
    let widths = b
        .exec(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            json!([]),
        )
        .await;
    assert!(
        widths[0].as_i64() <= widths[1].as_i64(),
        "the page is wider than the window: {widths}"
    );
    // Hostile names are text: no element came from them.
    let injected = b
        .exec("return document.querySelectorAll('body img, body svg, body script:not([id=data])').length;", json!([]))
        .await;
    assert_eq!(injected, json!(1), "only the page's own script element");
    let text = b.exec("return document.body.innerText;", json!([])).await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("Auditors <img src=x onerror=\"document.title='pwned'\">"),
        "a group's display name shows as text"
    );
    assert!(
        text.contains("</script><script>document.title='pwned'</script>"),
        "a key's display name shows as text"
    );
    let who = b
        .exec("const tr = Array.from(document.querySelectorAll('#map tbody tr')).find((r) => r.querySelector('th .n')?.textContent === 'mallory'); tr.cells[1].dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); return document.querySelector('#details .who').textContent;", json!([]))
        .await;
    assert_eq!(
        who,
        json!("Member mallory (<img/src=x/onerror=document.title='pwned'>)"),
        "the username shows as text"
    );

    // Every cell against explain, and the page's words against who-can.
    let page = b.exec(READ_CELLS, json!([null])).await;
    let seen = rows(&page);
    assert_eq!(seen.len(), 5 + 2, "every member and key is a row");
    let bad = disagreements(&page, &files);
    assert!(
        bad.is_empty(),
        "the page disagrees with explain:\n{}",
        bad.join("\n")
    );
    let cell = |name: &str, d: &str| {
        seen.iter()
            .find(|r| r.1 == name)
            .map(|r| r.3[d].clone())
            .unwrap()
    };
    // The sample the comparison must have covered: a Custom cell, a None
    // cell, a grant through an access list, a key's template grant.
    assert_eq!(cell("ada-atlassian", "Content/Sources").level, "Custom");
    assert!(
        cell("ada-atlassian", "Content/Sources")
            .resources
            .contains(&"jira Edit".to_string())
    );
    assert_eq!(cell("ada-atlassian", "Search/ReplayAnyQuery"), none());
    assert_eq!(
        cell("public-search", "Organization/Groups").granted,
        ["access list of Group group-auditors"]
    );
    assert_eq!(
        cell("public-search", "Analytics/AnalyticsData").granted,
        ["template AnonymousSearch"]
    );
    assert_eq!(cell("ci-deployer", "Content/Fields").level, "Edit");
    for (verb, target) in [
        ("view", "Analytics/AnalyticsData"),
        ("push", "Analytics/AnalyticsData"),
        ("allowed", "Search/ExecuteQueries"),
        ("edit", "Content/Fields"),
        ("view", "Content/Sources/jira"),
        ("edit", "Content/Sources/jira"),
        ("view", "Organization/Groups/group-auditors"),
        ("view", "Organization/Organization"),
    ] {
        let core = who_can(&files, verb, target);
        assert!(!core.is_empty(), "who-can {verb} {target} lists someone");
        assert_eq!(
            page_can(&page, verb, target),
            core,
            "who-can {verb} {target}"
        );
    }

    // The comparison can fail: plant a wrong cell and it names it.
    b.exec(
        "const tr = Array.from(document.querySelectorAll('#map tbody tr')).find((r) => r.querySelector('th .n')?.textContent === 'vendor-dev'); const td = tr.cells[1]; td.className = 'Le'; td.textContent = 'Edit';",
        json!([]),
    )
    .await;
    let planted = disagreements(&b.exec(READ_CELLS, json!([["vendor-dev"]])).await, &files);
    assert_eq!(planted.len(), 1, "{planted:?}");
    assert!(
        planted[0].starts_with("Member vendor-dev Analytics/Administrate: page"),
        "{planted:?}"
    );
    b.goto(&file_url(&page_path)).await;

    // The keyboard: Tab from the last filter reaches the matrix's one tab
    // stop; the arrow keys move; the focused cell shows what grants it.
    b.exec("document.getElementById('kind').focus();", json!([]))
        .await;
    b.press(&[TAB]).await;
    let focus = "const a = document.activeElement; const tr = a.parentElement; return {tag: a.tagName, row: tr.querySelector('th .n')?.textContent, col: a.cellIndex, described: a.getAttribute('aria-describedby'), level: document.querySelector('#details .level')?.textContent, granted: Array.from(document.querySelectorAll('#details ul.granted li'), (li) => li.textContent)};";
    let f = b.exec(focus, json!([])).await;
    assert_eq!(
        (f["tag"].as_str(), f["row"].as_str(), f["col"].as_i64()),
        (Some("TD"), Some("ada-atlassian"), Some(1)),
        "{f}"
    );
    b.press(&[ARROW_DOWN]).await;
    let f = b.exec(focus, json!([])).await;
    assert_eq!(f["row"], json!("john-smith"), "{f}");
    assert_eq!(f["described"], json!("details"), "{f}");
    let want = cell("john-smith", "Analytics/Administrate");
    assert_eq!(f["level"], json!(want.level));
    assert_eq!(f["granted"], json!(want.granted));
    assert_eq!(want.granted, ["limited-administrators"]);
    b.press(&[ARROW_RIGHT]).await;
    let f = b.exec(focus, json!([])).await;
    assert_eq!(
        (f["row"].as_str(), f["col"].as_i64()),
        (Some("john-smith"), Some(2)),
        "{f}"
    );
    // Leaving and coming back lands on the same cell (one tab stop).
    b.press_shift_tab().await;
    b.press(&[TAB]).await;
    let f = b.exec(focus, json!([])).await;
    assert_eq!(
        (f["row"].as_str(), f["col"].as_i64()),
        (Some("john-smith"), Some(2)),
        "{f}"
    );

    // The pointer: hovering a cell shows its grants.
    let target = b
        .exec("return Array.from(document.querySelectorAll('#map tbody tr')).find((r) => r.querySelector('th .n')?.textContent === 'public-search').cells[1 + arguments[0]];", json!([col_of("Organization/Groups")]))
        .await;
    b.hover(&target).await;
    let granted = b.exec("return Array.from(document.querySelectorAll('#details ul.granted li'), (li) => li.textContent);", json!([])).await;
    assert_eq!(granted, json!(["access list of Group group-auditors"]));

    // The filter: by a group's name, then by level.
    let q = b
        .exec("return document.getElementById('q');", json!([]))
        .await;
    b.type_into(&q, "limited").await;
    let shown = "return Array.from(document.querySelectorAll('#map tbody tr')).filter((r) => !r.hidden && r.cells.length > 1 && !r.parentElement.hidden).map((r) => r.querySelector('th .n').textContent);";
    assert_eq!(b.exec(shown, json!([])).await, json!(["john-smith"]));
    assert_eq!(
        b.exec(
            "return document.getElementById('count').textContent;",
            json!([])
        )
        .await,
        json!("1 of 7 rows shown")
    );
    b.exec("const q = document.getElementById('q'); q.value = ''; const l = document.getElementById('lvl'); l.value = 'Lc'; l.dispatchEvent(new Event('input'));", json!([])).await;
    assert_eq!(
        b.exec(shown, json!([])).await,
        json!(["ada-atlassian", "public-search"])
    );
    b.exec("const l = document.getElementById('lvl'); l.value = ''; l.dispatchEvent(new Event('input'));", json!([])).await;

    // A screenshot for CI's artifacts, a cell in focus and its details shown.
    b.exec("document.getElementById('kind').focus();", json!([]))
        .await;
    b.press(&[TAB, ARROW_DOWN, ARROW_RIGHT, ARROW_RIGHT]).await;
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(artifacts().join("access-map.png"), &png).unwrap();

    let after = problems(&b).await;
    assert!(
        after.is_empty(),
        "the page logged problems while used: {after:#?}"
    );
    // The log and the listener do see a problem when there is one: an image
    // the policy blocks.
    b.exec("const i = document.createElement('img'); i.src = 'https://example.invalid/x.png'; document.body.append(i);", json!([])).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let seen = problems(&b).await;
    assert!(
        seen.iter()
            .any(|p| p.starts_with("console") && p.contains("Content Security Policy")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|p| p.starts_with("CSP violation: img-src")),
        "{seen:#?}"
    );
    b.quit().await;
}

/// The index of a `Service/Domain` column.
fn col_of(domain: &str) -> usize {
    // The page's columns are the catalog's, in its order.
    let catalog: Value = serde_json::from_str(&orgaccess(&["catalog", "-o", "json"])).unwrap();
    catalog
        .as_array()
        .unwrap()
        .iter()
        .position(|d| {
            format!(
                "{}/{}",
                d["service"].as_str().unwrap(),
                d["domain"].as_str().unwrap()
            ) == domain
        })
        .unwrap()
}

/// An organization of 1,000 members, 40 groups and 50 keys.
fn large_organization(dir: &Path) -> PathBuf {
    let mut y = String::from(
        "apiVersion: orgaccess.dev/v1alpha1\nkind: Organization\nmetadata: {name: big}\nspec:\n  displayName: Big\n  resources: {sources: [s0, s1, s2, s3, s4, s5, s6, s7]}\n",
    );
    let grants = [
        "- {service: Content, domain: Fields, level: Edit}",
        "- {service: Content, domain: Sources, level: Custom, resources: [{name: s1, level: Edit}, {name: s2, level: View}]}",
        "- {service: Search, domain: ExecuteQueries, level: Allowed}",
        "- {service: Analytics, domain: Reports, level: View}",
        "- {service: Organization, domain: Organization, level: View}",
        "- {service: Search, domain: QueryPipelines, level: Edit}",
    ];
    for g in 0..40 {
        y.push_str(&format!("---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: team-{g:02}}}\nspec:\n  displayName: Team {g}\n  privileges:\n"));
        for (i, grant) in grants.iter().enumerate() {
            if (g + i) % 3 != 0 {
                y.push_str(&format!("    {grant}\n"));
            }
        }
        if g % 5 == 0 {
            y.push_str(&format!("  access:\n    - {{group: team-{:02}, level: View}}\n    - {{apiKey: key-{:02}, level: Edit}}\n", (g + 1) % 40, g % 50));
        }
    }
    for m in 0..1000 {
        y.push_str(&format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Member\nmetadata: {{name: member-{m:04}}}\nspec:\n  identity: {{provider: Email, username: member{m}@big.example}}\n  groups: [team-{:02}, team-{:02}]\n  accepted: {}\n",
            m % 40,
            (m * 7 + 3) % 40,
            m % 10 != 0
        ));
    }
    for k in 0..50 {
        y.push_str(&format!(
            "---\napiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata: {{name: key-{k:02}}}\nspec:\n  displayName: Key {k}\n  template: {}\n  allowedIps: [10.{k}.0.0/16]\n",
            if k % 2 == 0 { "AnonymousSearch" } else { "SearchPages" }
        ));
    }
    let path = dir.join("big.yaml");
    std::fs::write(&path, y).unwrap();
    path
}

#[tokio::test]
async fn an_organization_of_1000_members_loads_without_errors() {
    let work = tempfile::tempdir().unwrap();
    let big = large_organization(work.path());
    let big = big.to_str().unwrap();
    let page_path = work.path().join("big.html");
    orgaccess(&[
        "report",
        "--html-file",
        page_path.to_str().unwrap(),
        "-f",
        big,
    ]);
    let size = std::fs::metadata(&page_path).unwrap().len();
    // Measured, and bounded: docs/access-map.md gives the figure.
    eprintln!("access map of 1,000 members, 50 keys, 40 groups: {size} bytes");
    assert!(size < 4 * 1024 * 1024, "{size} bytes");

    let b = Browser::start(work.path()).await;
    b.before_each_document(CSP_LISTENER).await;
    b.goto(&file_url(&page_path)).await;
    let loaded = problems(&b).await;
    assert!(
        loaded.is_empty(),
        "the page logged problems on load: {loaded:#?}"
    );
    let count = b
        .exec(
            "return document.getElementById('count').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(count, json!("1050 of 1050 rows shown"));
    // A sample of rows, cell by cell, against explain.
    let sample = [
        "member-0000",
        "member-0001",
        "member-0457",
        "member-0999",
        "key-00",
        "key-07",
    ];
    let page = b.exec(READ_CELLS, json!([sample])).await;
    assert_eq!(rows(&page).len(), sample.len());
    let bad = disagreements(&page, &[big]);
    assert!(
        bad.is_empty(),
        "the page disagrees with explain:\n{}",
        bad.join("\n")
    );
    let q = b
        .exec("return document.getElementById('q');", json!([]))
        .await;
    b.type_into(&q, "team-07").await;
    let shown = b
        .exec(
            "return document.getElementById('count').textContent;",
            json!([]),
        )
        .await;
    let members_of_7 = (0..1000)
        .filter(|m| m % 40 == 7 || (m * 7 + 3) % 40 == 7)
        .count();
    assert_eq!(shown, json!(format!("{members_of_7} of 1050 rows shown")));
    let after = problems(&b).await;
    assert!(after.is_empty(), "{after:#?}");
    b.quit().await;
}

/// The flags' errors: `report` is only a page; `diff --html` draws one namespace.
#[test]
fn report_asks_for_html_and_diff_html_for_one_namespace() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orgaccess"))
            .args(args)
            .current_dir(root())
            .env("ORGACCESS_LOG", "warn")
            .env_remove("KUBECONFIG")
            .output()
            .expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["report", "-f", "examples/"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give --html"), "{err}");

    let work = tempfile::tempdir().unwrap();
    let (base, head) = (work.path().join("base"), work.path().join("head"));
    for (dir, level) in [(&base, "View"), (&head, "Edit")] {
        std::fs::create_dir_all(dir).unwrap();
        let mut y = String::new();
        for ns in ["one", "two"] {
            y.push_str(&format!(
                "---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {{name: g, namespace: {ns}}}\nspec:\n  displayName: G\n  privileges:\n    - {{service: Content, domain: Fields, level: {level}}}\n"
            ));
        }
        std::fs::write(dir.join("g.yaml"), y).unwrap();
    }
    let (base, head) = (base.to_str().unwrap(), head.to_str().unwrap());
    let (code, err) = run(&["diff", base, head, "--html"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("choose one with -n"), "{err}");
    let page = work.path().join("one.html");
    let (code, err) = run(&[
        "diff",
        base,
        head,
        "-n",
        "one",
        "--html-file",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<title>Access change: namespace one</title>"));
}
