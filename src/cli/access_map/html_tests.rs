//! The page as text: hostile names stay text, the policy's hashes are the
//! page's own style and script, cells sit in their domain's column, marks
//! are words and symbols.

use super::*;
use crate::cli::access_map::{AccessMap, Mark};
use crate::cli::manifest::{Loaded, parse_text};
use crate::cli::source::{self, Org};
use crate::core::privilege::AccessLevel;

const HOSTILE: &str = r#"
apiVersion: orgaccess.dev/v1alpha1
kind: Organization
metadata: {name: acme, namespace: t}
spec:
  displayName: ACME
  resources: {sources: [jira, web]}
---
apiVersion: orgaccess.dev/v1alpha1
kind: Group
metadata: {name: editors, namespace: t}
spec:
  displayName: "</script><script>alert(2)</script><!--"
  privileges:
    - {service: Content, domain: Fields, level: Edit}
    - service: Content
      domain: Sources
      level: Custom
      resources: [{name: jira, level: Edit}]
  access:
    - {apiKey: feed, level: View}
---
apiVersion: orgaccess.dev/v1alpha1
kind: Member
metadata: {name: mallory, namespace: t}
spec:
  identity: {provider: SingleSignOn, username: "<img/src=x/onerror=alert(1)>"}
  groups: [editors]
  accepted: true
---
apiVersion: orgaccess.dev/v1alpha1
kind: ApiKey
metadata: {name: feed, namespace: t}
spec:
  displayName: "\"><svg onload=alert(3)>"
  template: Custom
  privileges:
    - {service: Search, domain: ExecuteQueries, level: Allowed}
  allowedIps: [10.0.0.0/8]
  deniedIps: [10.1.0.0/16]
"#;

fn org(yaml: &str) -> Org {
    let mut loaded = Loaded::default();
    parse_text("t.yaml", yaml, "default", &mut loaded);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    source::states(&loaded.manifests, true)
        .remove("t")
        .expect("namespace t")
}

fn page(yaml: &str) -> (AccessMap, String) {
    let map = AccessMap::build(&org(yaml), "from a test", jiff::Timestamp::UNIX_EPOCH);
    let html = render(&map);
    (map, html)
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s.find(start).expect(start) + start.len();
    let j = s[i..].find(end).expect(end) + i;
    &s[i..j]
}

#[test]
fn escape_covers_the_five_characters() {
    assert_eq!(
        escape(r#"<a href="x" title='y'>&</a>"#),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(escape("plain-name"), "plain-name");
}

#[test]
fn json_in_a_script_element_cannot_close_it() {
    let v = json!({"g": ["</script><script>alert(1)</script>", "<!--", "a&b"]});
    let text = json_for_script(&v);
    assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
}

#[test]
fn hostile_names_render_as_text() {
    let (_, html) = page(HOSTILE);
    // No markup from the manifests: only the page's own two script
    // elements, no img or svg element at all.
    assert_eq!(html.matches("<script").count(), 2, "{html}");
    assert!(!html.contains("<img") && !html.contains("<svg"), "{html}");
    assert!(!html.contains("<!--"));
    // The names are there, as text.
    assert!(html.contains("&lt;img/src=x/onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;&lt;!--"));
    assert!(html.contains("&quot;&gt;&lt;svg onload=alert(3)&gt;"));
    // The data block holds no `<` whatever the names.
    let data = between(
        &html,
        "<script type=\"application/json\" id=data>",
        "</script>",
    );
    assert!(!data.contains('<'));
    serde_json::from_str::<Value>(data).expect("the data block is JSON");
}

#[test]
fn the_policy_allows_exactly_the_pages_style_and_script() {
    let (_, html) = page(HOSTILE);
    let csp = between(
        &html,
        "http-equiv=\"Content-Security-Policy\" content=\"",
        "\"",
    );
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    let style = between(&html, "<style>", "</style>");
    let script = between(&html, "<script>", "</script>");
    assert_eq!(
        csp,
        content_security_policy(style, script),
        "the hashes are the style's and the script's"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    // Nothing else could need the policy: no style attributes, no handlers, no URLs.
    assert!(!html.contains(" style="));
    let markup = &html[..html.find("<script").unwrap()];
    for tag in markup
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
    {
        // Attribute names only: drop the quoted values.
        let names: String = tag.split('"').step_by(2).collect::<Vec<_>>().join("\"\"");
        let handler = names
            .split_whitespace()
            .any(|attr| attr.starts_with("on") && attr.contains('=') || attr.starts_with("style="));
        assert!(!handler, "an event handler or style attribute: <{tag}>");
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(
        !html.contains("<form"),
        "a form would submit against form-action"
    );
}

/// The cells of the row whose name is `name`: (level class, words); a cell
/// without a level class is None's.
fn row_cells(html: &str, name: &str) -> Vec<(String, String)> {
    let row = between(html, &format!("<span class=n>{name}</span>"), "</tr>\n");
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let (tag, _) = cell.split_once('>').unwrap();
            let class = tag
                .split_whitespace()
                .find_map(|a| a.strip_prefix("class="))
                .map(|c| c.trim_matches('"'))
                .filter(|c| c.starts_with('L'))
                .unwrap_or("L0");
            let words = cell.rsplit('>').next().unwrap();
            (class.to_string(), words.to_string())
        })
        .collect()
}

#[test]
fn each_cell_names_its_level_in_its_domains_column() {
    let (map, html) = page(HOSTILE);
    let columns: Vec<_> = AccessMap::columns().collect();
    for p in map.members.iter().chain(&map.keys) {
        let cells = row_cells(&html, &p.name);
        assert_eq!(cells.len(), columns.len(), "{}", p.name);
        for (d, (class, words)) in columns.iter().zip(&cells) {
            let level = p.cell(*d).map_or(AccessLevel::None, |c| c.level);
            assert_eq!(class, palette::swatch(level).class, "{} {d}", p.name);
            assert_eq!(words, &format!("{level:?}"), "{} {d}", p.name);
        }
    }
    // The facts behind the example: mallory's Custom Sources, the key's own
    // Allowed and its View on the group through the group's access list.
    let col = |s, d| catalog::lookup(s, d).unwrap() as usize;
    let mallory = row_cells(&html, "mallory");
    assert_eq!(mallory[col(Service::Content, "Sources")].1, "Custom");
    assert_eq!(mallory[col(Service::Content, "Fields")].1, "Edit");
    assert_eq!(mallory[col(Service::Search, "ExecuteQueries")].1, "None");
    let feed = row_cells(&html, "feed");
    assert_eq!(feed[col(Service::Search, "ExecuteQueries")].1, "Allowed");
    assert_eq!(feed[col(Service::Organization, "Groups")].1, "Custom");
    let key = &map.keys[0];
    let groups = key.cell(*catalog::GROUPS).unwrap();
    assert_eq!(groups.granted_by, vec!["access list of Group editors"]);
}

#[test]
fn one_cell_is_the_tab_stop() {
    let (_, html) = page(HOSTILE);
    assert_eq!(html.matches("tabindex=0").count(), 1);
    let first = between(&html, "<span class=n>mallory</span>", "\n");
    assert!(first.contains("tabindex=0"));
}

#[test]
fn marks_are_symbols_and_words() {
    let (mut map, _) = page(HOSTILE);
    let d = catalog::lookup(Service::Content, "Fields").unwrap();
    map.members[0].cells.get_mut(&d).unwrap().mark = Some(Mark {
        change: Change::Gained,
        before: "View".into(),
        causes: vec!["Group editors".into()],
    });
    let mut lost = Cell::none();
    lost.mark = Some(Mark {
        change: Change::Lost,
        before: "Edit".into(),
        causes: vec![],
    });
    let gone = catalog::lookup(Service::Content, "Extensions").unwrap();
    map.members[0].cells.insert(gone, lost);
    let html = render(&map);
    let row = between(&html, "<span class=n>mallory</span>", "\n");
    assert!(row.contains("<td class=\"Le mg\""), "{row}");
    assert!(row.contains(
        "<span class=sym aria-hidden=true>\u{25B2}</span><span class=sr>gained: </span>Edit"
    ));
    assert!(row.contains("<td class=ml"), "{row}");
    assert!(row.contains("<span class=sr>lost: </span>None"));
    // The legend explains the marks in words, and the level filter offers them.
    assert!(html.contains("held now, not before"));
    assert!(html.contains("<option value=mark>"));
}

#[test]
fn sections_list_groups_keys_and_findings() {
    let (map, html) = page(HOSTILE);
    let keys = between(&html, "<section id=keys", "</section>");
    assert!(keys.contains("<li>10.0.0.0/8") && keys.contains("<li>10.1.0.0/16"));
    assert!(keys.contains("Search/ExecuteQueries: Allowed"));
    assert!(keys.contains("<td>any<td>"), "no search hub: any");
    let groups = between(&html, "<section id=groups", "</section>");
    assert!(groups.contains("<li>mallory"));
    assert!(groups.contains("ApiKey feed: View"));
    let findings = between(&html, "<section id=findings", "</section>");
    assert!(findings.contains(&format!("Findings ({})", map.findings.len())));
    for f in &map.findings {
        assert!(findings.contains(f.id), "{}", f.id);
    }
}
