//! The access map as one self-contained HTML page: inline CSS and script
//! only, allowed by their SHA-256 hashes in a Content-Security-Policy that
//! allows nothing else (`default-src 'none'`): no network, no fonts, no
//! images, no forms.
//!
//! Every name, display name and message is attacker-controlled text: it is
//! written through [`escape`] (element text and quoted attributes) or, in the
//! one data block the script reads (what grants each cell), through
//! [`json_for_script`], which leaves no `<` in the block. The script builds
//! the details with `textContent` only.
//!
//! Size: a cell is its level's class and words (`<td class=Lv data-p=3>View`,
//! end tags omitted as HTML allows; a None cell is `<td>None`); what grants a cell is interned once in
//! the data block and cells point to it by number (docs/access-map.md gives
//! the size at 1,000 members).

use std::collections::HashMap;
use std::fmt::Write;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::palette::{self, LEVELS, swatch};
use super::sections;
use super::{AccessMap, Cell, Change, Kind, Principal};
use crate::core::catalog::{self, Service};
use crate::core::privilege::AccessLevel;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// HTML-escapes text for an element's content or a quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON to embed in `<script type="application/json">`: `<`, `>` and `&`
/// inside strings become `\u003c`, `\u003e`, `\u0026` (the same value for
/// `JSON.parse`), so no text can close the element or open a comment.
pub fn json_for_script(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page's policy: only the one style element and the one script, by hash.
pub fn content_security_policy(style: &str, script: &str) -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'none'; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'",
        sha256_source(style),
        sha256_source(script)
    )
}

/// The level classes, written from the palette (so its contrast tests test
/// what the page shows).
fn level_css() -> String {
    let mut css = String::new();
    // A matrix cell without a class is None (most cells: the class is left
    // out to keep the page small); the level classes win over it.
    let none = &LEVELS[0].1;
    let _ = write!(
        css,
        "#map tbody td{{background:{};color:{}}}",
        none.background, none.text
    );
    for (_, s) in LEVELS {
        let _ = write!(
            css,
            ".{c},#map td.{c}{{background:{b};color:{t}}}",
            c = s.class,
            b = s.background,
            t = s.text
        );
    }
    let _ = write!(
        css,
        "body{{color:{};background:{}}}.muted{{color:{}}}a{{color:{}}}.mg{{outline:2px solid {g};outline-offset:-2px}}.ml{{outline:2px dashed {l};outline-offset:-2px}}.mc{{outline:2px dotted {c};outline-offset:-2px}}.mg .sym{{color:{g}}}.ml .sym{{color:{l}}}.mc .sym{{color:{c}}}.sev.critical{{color:{l};font-weight:700}}#map td:focus,#map td:focus-visible{{outline:3px solid {f};outline-offset:-3px}}",
        palette::PAGE_TEXT,
        palette::PAGE_BACKGROUND,
        palette::MUTED_TEXT,
        palette::LINK,
        g = palette::GAINED,
        l = palette::LOST,
        c = palette::CHANGED,
        f = palette::FOCUS,
    );
    css
}

/// Interns what grants each cell; cells carry its number.
#[derive(Default)]
struct Interned {
    index: HashMap<String, usize>,
    values: Vec<Value>,
}

impl Interned {
    fn add(&mut self, v: Value) -> usize {
        let key = v.to_string();
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        self.values.push(v);
        self.index.insert(key, self.values.len() - 1);
        self.values.len() - 1
    }
}

/// What the details panel shows of a cell (besides its level): what grants
/// it, Can Create, the resources of a Custom grant, a comparison's mark.
fn cell_facts(c: &Cell) -> Value {
    let mut v = json!({ "g": c.granted_by });
    if let Some(cc) = c.can_create {
        v["c"] = json!(cc);
    }
    if !c.resources.is_empty() {
        v["r"] = json!(
            c.resources
                .iter()
                .map(|r| format!("{} {:?}", r.name, r.level))
                .collect::<Vec<_>>()
        );
    }
    if let Some(m) = &c.mark {
        v["m"] = json!({
            "k": match m.change {
                Change::Gained => "gained",
                Change::Lost => "lost",
                Change::Changed => "changed",
            },
            "b": m.before,
            "c": m.causes,
        });
    }
    v
}

fn write_cell(out: &mut String, cell: Option<&Cell>, facts: &mut Interned, first: &mut bool) {
    let none = Cell::none();
    let c = cell.unwrap_or(&none);
    let s = swatch(c.level);
    let mark = c.mark.as_ref().map(|m| match m.change {
        Change::Gained => ("mg", "\u{25B2}", "gained: "),
        Change::Lost => ("ml", "\u{25BC}", "lost: "),
        Change::Changed => ("mc", "\u{25C6}", "changed: "),
    });
    // None's class is left out (the matrix's default colours).
    let level_class = (c.level != AccessLevel::None).then_some(s.class);
    out.push_str("<td");
    match (level_class, mark) {
        (Some(l), Some((m, ..))) => {
            let _ = write!(out, " class=\"{l} {m}\"");
        }
        (Some(l), None) => {
            let _ = write!(out, " class={l}");
        }
        (None, Some((m, ..))) => {
            let _ = write!(out, " class={m}");
        }
        (None, None) => {}
    }
    if cell.is_some() {
        let _ = write!(out, " data-p={}", facts.add(cell_facts(c)));
    }
    if std::mem::take(first) {
        out.push_str(" tabindex=0");
    }
    out.push('>');
    if let Some((_, symbol, words)) = mark {
        let _ = write!(
            out,
            "<span class=sym aria-hidden=true>{symbol}</span><span class=sr>{words}</span>"
        );
    }
    out.push_str(s.label);
}

fn write_row(out: &mut String, p: &Principal, facts: &mut Interned, first: &mut bool) {
    let _ = write!(
        out,
        "<tr data-i=\"{}\" data-g=\"{}\" data-ph=\"{}\"><th scope=row><span class=n>{}</span>",
        escape(&p.identity),
        escape(&p.groups.join(" ")),
        escape(&p.phase),
        escape(&p.name),
    );
    if p.phase != "Active" {
        let _ = write!(out, " <span class=ph>({})</span>", escape(&p.phase));
    }
    for d in AccessMap::columns() {
        write_cell(out, p.cell(d), facts, first);
    }
    // The end tag keeps the line break out of the last cell's text.
    out.push_str("</tr>\n");
}

/// The services in catalog order with their number of domains.
fn services() -> Vec<(Service, usize)> {
    let mut out: Vec<(Service, usize)> = Vec::new();
    for d in AccessMap::columns() {
        let s = catalog::domain(d).service;
        match out.last_mut() {
            Some((last, n)) if *last == s => *n += 1,
            _ => out.push((s, 1)),
        }
    }
    out
}

fn write_matrix(out: &mut String, map: &AccessMap, facts: &mut Interned) {
    let columns = AccessMap::columns().count();
    out.push_str("<div class=scroll><table id=map><caption>Members and API keys (rows) by service and domain (columns); each cell names the level held. Focus a cell, or point at it, to see what grants it.</caption>\n");
    for (_, n) in services() {
        let _ = write!(out, "<colgroup span={n}></colgroup>");
    }
    out.push_str(
        "<thead><tr class=svc><td class=corner rowspan=2><span class=sr>Member or API key</span>",
    );
    for (s, n) in services() {
        let _ = write!(out, "<th scope=colgroup colspan={n}>{s}");
    }
    out.push_str("\n<tr class=dom>");
    for d in AccessMap::columns() {
        let dom = catalog::domain(d);
        let _ = write!(
            out,
            "<th scope=col data-d=\"{svc}/{name}\" title=\"{svc}/{name}: {display}\"><span>{name}</span>",
            svc = dom.service,
            name = dom.name,
            display = escape(dom.display),
        );
    }
    out.push_str("\n</thead>\n");
    let mut first = true;
    for (kind, rows, title) in [
        (Kind::Member, &map.members, "Members"),
        (Kind::ApiKey, &map.keys, "API keys"),
    ] {
        let _ = writeln!(
            out,
            "<tbody data-kind={}><tr class=sect><th scope=rowgroup colspan={}>{title} ({})",
            kind.as_str(),
            columns + 1,
            rows.len()
        );
        for p in rows {
            write_row(out, p, facts, &mut first);
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table></div>\n");
}

fn write_legend(out: &mut String, marks: bool) {
    out.push_str("<ul class=legend aria-label=\"Levels\">");
    for (_, s) in LEVELS {
        let _ = write!(
            out,
            "<li><span class=\"sw {}\">{}</span> {}",
            s.class,
            s.label,
            escape(s.meaning)
        );
    }
    if marks {
        out.push_str("<li><span class=\"sw L0 mg\"><span class=sym aria-hidden=true>\u{25B2}</span> gained</span> held now, not before (or more than before)<li><span class=\"sw L0 ml\"><span class=sym aria-hidden=true>\u{25BC}</span> lost</span> held before, not now (or less than before)<li><span class=\"sw L0 mc\"><span class=sym aria-hidden=true>\u{25C6}</span> changed</span> some more, some less (the details say what)");
    }
    out.push_str("</ul>\n");
}

fn write_filters(out: &mut String, marks: bool) {
    out.push_str("<div class=filters role=search aria-label=\"Filter the rows\"><label for=q>Name, identity or group</label> <input id=q type=search autocomplete=off spellcheck=false> <label for=lvl>Holding</label> <select id=lvl><option value=\"\">any level");
    for (_, s) in LEVELS.iter().skip(1) {
        let _ = write!(out, "<option value={}>{}", s.class, s.label);
    }
    if marks {
        out.push_str("<option value=mark>a change");
    }
    out.push_str("</select> <label for=kind>Show</label> <select id=kind><option value=\"\">members and keys<option value=Member>members<option value=ApiKey>API keys</select> <output id=count for=\"q lvl kind\" aria-live=polite></output></div>\n");
}

/// The whole page.
pub fn render(map: &AccessMap) -> String {
    let css = format!("{CSS}{}", level_css());
    let marks = map
        .members
        .iter()
        .chain(&map.keys)
        .any(|p| p.cells.values().any(|c| c.mark.is_some()))
        || map.changes.is_some();
    let mut facts = Interned::default();
    let mut body = String::with_capacity(64 * 1024);
    write_legend(&mut body, marks);
    write_filters(&mut body, marks);
    body.push_str("<div id=details class=details><p class=muted>Focus a cell (Tab into the matrix, then the arrow keys) or point at it: what grants it shows here.</p></div>\n<noscript><p>What grants each cell needs JavaScript; the levels, groups, keys and findings do not.</p></noscript>\n");
    write_matrix(&mut body, map, &mut facts);
    let levels: serde_json::Map<String, Value> = LEVELS
        .iter()
        .map(|(_, s)| (s.class.to_string(), json!(s.label)))
        .collect();
    let data = json!({ "levels": levels, "cells": facts.values });
    let title = match map.changes {
        Some(_) => format!("Access change: namespace {}", map.namespace),
        None => format!("Access map: namespace {}", map.namespace),
    };
    let mut page = String::with_capacity(body.len() + 64 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n<meta name=referrer content=no-referrer>\n<meta name=viewport content=\"width=device-width, initial-scale=1\">\n<meta name=generator content=\"orgaccess {version}\">\n<title>{title}</title>\n<style>{css}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n<p class=muted>{subtitle}; generated {at} by orgaccess {version}. {m} members, {k} API keys, {g} groups, {f} findings.</p>\n<nav aria-label=Sections>{change_link}<a href=\"#matrix\">Who holds what</a> · <a href=\"#groups\">Groups</a> · <a href=\"#keys\">API keys</a> · <a href=\"#findings\">Findings</a></nav>\n</header>\n<main>\n{changes}<section id=matrix aria-labelledby=h-matrix>\n<h2 id=h-matrix>Who holds what</h2>\n{body}</section>\n",
        // Our own words and base64 only: nothing to escape.
        changes = map
            .changes
            .as_ref()
            .map(sections::changes)
            .unwrap_or_default(),
        change_link = if map.changes.is_some() {
            "<a href=\"#change\">The change</a> · "
        } else {
            ""
        },
        csp = content_security_policy(&css, SCRIPT),
        version = env!("CARGO_PKG_VERSION"),
        title = escape(&title),
        subtitle = escape(&map.subtitle),
        at = map.generated_at,
        m = map.members.iter().filter(|p| p.phase != "Removed").count(),
        k = map.keys.iter().filter(|p| p.phase != "Removed").count(),
        g = map.groups.len(),
        f = map.findings.len(),
    );
    sections::write_groups(&mut page, &map.groups);
    sections::write_keys(&mut page, &map.key_details);
    sections::write_findings(&mut page, &map.findings);
    let _ = write!(
        page,
        "</main>\n<script type=\"application/json\" id=data>{}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        json_for_script(&data)
    );
    page
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
