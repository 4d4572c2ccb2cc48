//! The access map's sections below the matrix: groups (members, access
//! list, grants), API keys (phase, expiry, IP lists) and the advisor's
//! findings. Server-side HTML; every text through [`escape`].

use std::fmt::Write;

use super::compare::Changes;
use super::html::escape;
use crate::cli::explain::{ApiKeyJson, GroupJson, Row};
use crate::core::advice::{Finding, Severity};

/// Lists longer than this fold into a `<details>`.
const FOLD: usize = 8;

fn list(out: &mut String, items: &[String], what: &str) {
    if items.is_empty() {
        out.push_str("<span class=muted>none</span>");
        return;
    }
    let fold = items.len() > FOLD;
    if fold {
        let _ = write!(out, "<details><summary>{} {what}</summary>", items.len());
    }
    out.push_str("<ul class=plain>");
    for i in items {
        let _ = write!(out, "<li>{}", escape(i));
    }
    out.push_str("</ul>");
    if fold {
        out.push_str("</details>");
    }
}

fn grant_text(r: &Row) -> String {
    let mut s = format!("{}/{}: {:?}", r.service, r.domain, r.level);
    if r.can_create == Some(true) {
        s.push_str(" + Can Create");
    }
    if !r.resources.is_empty() {
        let res: Vec<String> = r
            .resources
            .iter()
            .map(|x| format!("{} {:?}", x.name, x.level))
            .collect();
        let _ = write!(s, " ({})", res.join(", "));
    }
    if !r.granted_by.is_empty() {
        let _ = write!(s, " \u{2190} {}", r.granted_by.join(", "));
    }
    s
}

pub fn write_groups(out: &mut String, groups: &[GroupJson]) {
    let _ = write!(
        out,
        "<section id=groups aria-labelledby=h-groups>\n<h2 id=h-groups>Groups ({})</h2>\n<div class=wide><table class=list><caption>Each group's active members, the access list it holds (who may view or edit the group itself) and what it grants (\u{2190} where each grant comes from).</caption>\n<thead><tr><th scope=col>Group<th scope=col>Kind<th scope=col>Members<th scope=col>Access list<th scope=col>Grants</thead>\n<tbody>\n",
        groups.len()
    );
    for g in groups {
        let kind = match (&g.built_in, &g.template, &g.duplicate_of) {
            (Some(b), ..) => format!("built-in {b}"),
            (None, Some(t), _) => format!("template {t}"),
            (None, None, Some(d)) => format!("duplicate of {d}"),
            _ => "custom".to_string(),
        };
        let _ = write!(
            out,
            "<tr><th scope=row><span class=n>{}</span><br><span class=muted>{}</span><td>{}<td>",
            escape(&g.name),
            escape(&g.display_name),
            escape(&kind)
        );
        list(out, &g.members, "members");
        out.push_str("<td>");
        let access: Vec<String> = g
            .access
            .iter()
            .map(|e| match (&e.group, &e.api_key) {
                (Some(n), _) => format!("Group {n}: {:?}", e.level),
                (None, Some(n)) => format!("ApiKey {n}: {:?}", e.level),
                (None, None) => "(invalid entry)".to_string(),
            })
            .collect();
        list(out, &access, "entries");
        out.push_str("<td>");
        let grants: Vec<String> = g.privileges.iter().map(grant_text).collect();
        list(out, &grants, "grants");
        out.push('\n');
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "\u{2014}".to_string())
}

pub fn write_keys(out: &mut String, keys: &[ApiKeyJson]) {
    let _ = write!(
        out,
        "<section id=keys aria-labelledby=h-keys>\n<h2 id=h-keys>API keys ({})</h2>\n<div class=wide><table class=list><caption>Each key's standing now (a Disabled or Expired key is refused), its expiry, the search hub its queries are bound to, the addresses it is allowed from and denied from, and what it grants.</caption>\n<thead><tr><th scope=col>Key<th scope=col>Template<th scope=col>Phase<th scope=col>Expires<th scope=col>Search hub<th scope=col>Allowed IPs<th scope=col>Denied IPs<th scope=col>Last used<th scope=col>Grants</thead>\n<tbody>\n",
        keys.len()
    );
    for k in keys {
        let expires = match (&k.expires_at, &k.lifetime) {
            (Some(at), _) => format!("{at} ({} days)", k.lifetime_days),
            (None, _) => format!("{} days from creation (not created yet)", k.lifetime_days),
        };
        let phase = if k.enabled || k.phase != "Active" {
            k.phase.clone()
        } else {
            format!("{} (disabled)", k.phase)
        };
        let _ = write!(
            out,
            "<tr><th scope=row><span class=n>{}</span><br><span class=muted>{}</span><td>{}<td>{}<td>{}<td>{}<td>",
            escape(&k.name),
            escape(&or_dash(&k.display_name)),
            escape(&or_dash(&k.template)),
            escape(&phase),
            escape(&expires),
            escape(k.search_hub.as_deref().unwrap_or("any")),
        );
        list(out, &k.allowed_ips, "addresses");
        out.push_str("<td>");
        list(out, &k.denied_ips, "addresses");
        let _ = write!(
            out,
            "<td>{}<td>",
            escape(&or_dash(&k.last_used_at).replace('\u{2014}', "not recorded"))
        );
        let grants: Vec<String> = k.privileges.iter().map(grant_text).collect();
        list(out, &grants, "grants");
        out.push('\n');
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

pub fn write_findings(out: &mut String, findings: &[Finding]) {
    let _ = write!(
        out,
        "<section id=findings aria-labelledby=h-findings>\n<h2 id=h-findings>Findings ({})</h2>\n",
        findings.len()
    );
    if findings.is_empty() {
        out.push_str(
            "<p>The advisor (<code>orgaccess advise</code>) finds nothing.</p>\n</section>\n",
        );
        return;
    }
    out.push_str("<div class=wide><table class=list><caption>The least-privilege advisor's findings (<code>orgaccess advise</code>), most severe first.</caption>\n<thead><tr><th scope=col>Severity<th scope=col>Finding<th scope=col>Objects<th scope=col>What<th scope=col>Fix</thead>\n<tbody>\n");
    for f in findings {
        let severity = match f.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let _ = write!(
            out,
            "<tr><td class=\"sev {severity}\">{severity}<th scope=row>{}<td>",
            escape(f.id)
        );
        list(out, &f.objects, "objects");
        let _ = writeln!(out, "<td>{}<td>{}", escape(&f.message), escape(&f.fix));
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn finding_line(f: &Finding) -> String {
    let severity = match f.severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    format!(
        "{severity} {}: {} ({})",
        f.id,
        f.message,
        f.objects.join(", ")
    )
}

/// The summary of a comparison, above the matrix.
pub fn changes(c: &Changes) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<section id=change aria-labelledby=h-change>\n<h2 id=h-change>The change</h2>\n<p>From <strong>{}</strong> to <strong>{}</strong>: {} members, keys or identities gain privileges and {} lose some. The matrix shows the result, each changed cell marked in words and a symbol (\u{25B2} gained, \u{25BC} lost, \u{25C6} changed); \u{201C}Holding: a change\u{201D} shows only the rows that changed.</p>\n",
        escape(&c.base),
        escape(&c.head),
        c.gaining,
        c.losing
    );
    let mut parts: Vec<(&str, Vec<String>)> = vec![("Notices", c.notices.clone())];
    if let Some(refused) = &c.refused {
        parts.push(("Refused for the author (admission)", refused.clone()));
    }
    parts.extend([
        ("Kubernetes identities", c.identities.clone()),
        (
            "Findings that appear",
            c.appeared.iter().map(finding_line).collect(),
        ),
        (
            "Findings that go away",
            c.resolved.iter().map(finding_line).collect(),
        ),
    ]);
    for (title, items) in parts {
        let _ = write!(out, "<h3>{title} ({})</h3>", items.len());
        list(&mut out, &items, "lines");
        out.push('\n');
    }
    out.push_str("</section>\n");
    out
}
