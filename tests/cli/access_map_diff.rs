//! `orgaccess diff --html` in a real browser: the head's access map with
//! every change `orgaccess diff -o json` reports marked on its cell (and no
//! other cell marked), the head's cells as `explain` answers them on the
//! head, removed members as rows of losses, no console error or policy
//! violation; a screenshot (`target/artifacts/access-change.png`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::access_map::{
    CSP_LISTENER, READ_CELLS, artifacts, disagreements, file_url, orgaccess, problems, rows,
};
use crate::webdriver::Browser;

/// Copies `examples/`'s organization files into `dir`, changed by `edit`.
fn side(dir: &Path, edit: impl Fn(&str, String) -> String) {
    std::fs::create_dir_all(dir).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for f in [
        "00-organization.yaml",
        "10-groups.yaml",
        "20-members.yaml",
        "30-apikeys.yaml",
    ] {
        let text = std::fs::read_to_string(examples.join(f)).unwrap();
        std::fs::write(dir.join(f), edit(f, text)).unwrap();
    }
}

/// The pull request: vendor-dev joins Administrators (and accepts), ada
/// moves from the Atlassian sources to the marketing ones, john-smith is
/// removed, a new key edits Fields.
fn head_edit(file: &str, text: String) -> String {
    match file {
        "20-members.yaml" => {
            let text = text
                .replace(
                    "  groups: [sitecore-integrator]\n",
                    "  groups: [sitecore-integrator, administrators]\n  accepted: true\n",
                )
                .replace(
                    "  groups: [atlassian-administrators]\n",
                    "  groups: [marketing-administrators]\n",
                );
            text.split("\n---\n")
                .filter(|d| !d.contains("name: john-smith"))
                .collect::<Vec<_>>()
                .join("\n---\n")
        }
        "30-apikeys.yaml" => format!(
            "{text}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: ApiKey\nmetadata:\n  name: ci-bot\nspec:\n  displayName: CI bot\n  template: Custom\n  privileges:\n    - {{service: Content, domain: Fields, level: Edit}}\n"
        ),
        _ => text,
    }
}

/// Every marked cell: (kind, name, Service/Domain, direction), and the
/// details' mark line for it. Read through the page's hover handler.
const READ_MARKS: &str = r#"
const table = document.getElementById('map');
const details = document.getElementById('details');
const cols = Array.from(table.querySelectorAll('thead .dom th'), (th) => th.dataset.d);
const dir = {mg: 'gained', ml: 'lost', mc: 'changed'};
const out = [];
for (const tb of table.tBodies) {
  for (const tr of tb.rows) {
    if (tr.cells.length < 2) continue;
    for (const td of Array.from(tr.cells).slice(1)) {
      const m = Array.from(td.classList).find((c) => c in dir);
      if (!m) continue;
      td.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
      out.push({kind: tb.dataset.kind, name: tr.querySelector('th .n').textContent, phase: tr.dataset.ph,
        domain: cols[td.cellIndex - 1], direction: dir[m], words: td.textContent,
        mark: details.querySelector('.mark')?.textContent ?? ''});
    }
  }
}
return out;
"#;

#[tokio::test]
async fn diff_html_marks_every_change_orgaccess_diff_reports() {
    let work = tempfile::tempdir().unwrap();
    let (base, head) = (work.path().join("base"), work.path().join("head"));
    side(&base, |_, t| t);
    side(&head, head_edit);
    let (base, head) = (base.to_str().unwrap(), head.to_str().unwrap());
    let report: Value =
        serde_json::from_str(&orgaccess(&["diff", base, head, "-o", "json"])).unwrap();
    let ns = &report["namespaces"][0];
    let mut want = BTreeSet::new();
    for p in ns["principals"].as_array().unwrap() {
        let kind = p["principal"]["kind"].as_str().unwrap();
        let kind = match kind {
            "member" => "Member",
            "apiKey" => "ApiKey",
            _ => continue,
        };
        for c in p["changes"].as_array().unwrap() {
            want.insert((
                kind.to_string(),
                p["principal"]["name"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    c["service"].as_str().unwrap(),
                    c["domain"].as_str().unwrap()
                ),
                c["direction"].as_str().unwrap().to_string(),
            ));
        }
    }
    let directions: BTreeSet<&str> = want.iter().map(|w| w.3.as_str()).collect();
    assert_eq!(
        directions,
        BTreeSet::from(["changed", "gained", "lost"]),
        "the change gains, loses and trades"
    );

    let page_path = work.path().join("access-change.html");
    orgaccess(&[
        "diff",
        base,
        head,
        "--html-file",
        page_path.to_str().unwrap(),
    ]);
    let b = Browser::start(work.path()).await;
    b.before_each_document(CSP_LISTENER).await;
    b.goto(&file_url(&page_path)).await;
    let loaded = problems(&b).await;
    assert!(
        loaded.is_empty(),
        "the page logged problems on load: {loaded:#?}"
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
    let marks = b.exec(READ_MARKS, json!([])).await;
    let marks = marks.as_array().unwrap();
    let shown: BTreeSet<(String, String, String, String)> = marks
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap().to_string();
            (s("kind"), s("name"), s("domain"), s("direction"))
        })
        .collect();
    assert_eq!(shown, want, "the marked cells are the diff's changes");
    for m in marks {
        // Words and a symbol, never only a colour.
        let (words, mark) = (m["words"].as_str().unwrap(), m["mark"].as_str().unwrap());
        let d = m["direction"].as_str().unwrap();
        assert!(words.contains(&format!("{d}: ")), "{m}");
        assert!(
            mark.to_lowercase().contains(d) && mark.contains("before: "),
            "{m}"
        );
        if m["name"] == json!("john-smith") {
            assert_eq!(m["phase"], json!("Removed"), "{m}");
        }
    }
    assert!(
        marks.iter().any(|m| m["name"] == json!("john-smith")),
        "the removed member's losses"
    );

    // The cells themselves are the head's, as explain answers on the head.
    let present: Vec<String> = [
        "ada-atlassian",
        "olivia-owner",
        "vendor-dev",
        "public-search",
        "ci-bot",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let page = b.exec(READ_CELLS, json!([present])).await;
    assert_eq!(rows(&page).len(), present.len());
    let bad = disagreements(&page, &[head]);
    assert!(
        bad.is_empty(),
        "the page disagrees with explain on the head:\n{}",
        bad.join("\n")
    );

    // The summary names the new administrator; the filter keeps changed rows.
    let text = b
        .exec(
            "return document.getElementById('change').innerText;",
            json!([]),
        )
        .await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("Member/vendor-dev becomes an administrator"),
        "{text}"
    );
    b.exec("const l = document.getElementById('lvl'); l.value = 'mark'; l.dispatchEvent(new Event('input'));", json!([])).await;
    let changed: BTreeSet<String> = want.iter().map(|w| w.1.clone()).collect();
    let visible = b
        .exec("return Array.from(document.querySelectorAll('#map tbody tr')).filter((r) => !r.hidden && r.cells.length > 1).map((r) => r.querySelector('th .n').textContent);", json!([]))
        .await;
    let visible: BTreeSet<String> = visible
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(visible, changed);

    // The screenshot: the matrix in view, a gained cell clicked (focused) and its details shown.
    b.exec("const l = document.getElementById('lvl'); l.value = ''; l.dispatchEvent(new Event('input')); document.getElementById('h-matrix').scrollIntoView({behavior: 'instant'}); const tr = Array.from(document.querySelectorAll('#map tbody tr')).find((r) => r.querySelector('th .n')?.textContent === 'vendor-dev'); tr.cells[1].click();", json!([])).await;
    let focused = b.exec("return document.activeElement.parentElement.querySelector('th .n').textContent + ' ' + document.querySelector('#details .mark').textContent;", json!([])).await;
    assert!(
        focused
            .as_str()
            .unwrap()
            .starts_with("vendor-dev \u{25B2} Gained: before: None"),
        "{focused}"
    );
    let png = b.screenshot().await;
    std::fs::write(artifacts().join("access-change.png"), &png).unwrap();
    let after = problems(&b).await;
    assert!(after.is_empty(), "{after:#?}");
    b.quit().await;
}
