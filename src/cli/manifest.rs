//! Reading manifests: files, directories (recursively), multi-document YAML
//! or JSON, and standard input; keeping the `orgaccess.dev` objects.
//!
//! Every problem names its file, its document (1-based, counting the
//! non-empty documents of the file) and the line the document or the error is
//! on. Nothing here panics on bad input.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{AccessReview, ApiKey, Group, Member, Organization};
use crate::core::change::Def;
use crate::core::model::{AccessReviewDef, ApiKeyDef, GroupDef, Kind, MemberDef, OrgDef};

/// Where a document (or a problem in it) is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The path as given or found (`-` for standard input).
    pub file: String,
    /// 1-based index among the file's non-empty documents; 0 when the file
    /// could not be split into documents.
    pub document: usize,
    /// 1-based line; 0 when unknown.
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.document > 0 {
            write!(f, " (document {})", self.document)?;
        }
        Ok(())
    }
}

/// One object of the five kinds. Variants differ in size, but a run holds a
/// few hundred objects at most: boxing would buy nothing.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    Organization(Organization),
    Group(Group),
    Member(Member),
    ApiKey(ApiKey),
    AccessReview(AccessReview),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Organization(_) => Kind::Organization,
            Object::Group(_) => Kind::Group,
            Object::Member(_) => Kind::Member,
            Object::ApiKey(_) => Kind::ApiKey,
            Object::AccessReview(_) => Kind::AccessReview,
        }
    }

    /// Its core view, as the rules read it (the webhook reads the same).
    pub fn def(&self) -> Def {
        match self {
            Object::Organization(o) => Def::Organization(OrgDef::from(o)),
            Object::Group(o) => Def::Group(GroupDef::from(o)),
            Object::Member(o) => Def::Member(MemberDef::from(o)),
            Object::ApiKey(o) => Def::ApiKey(ApiKeyDef::from(o)),
            Object::AccessReview(o) => Def::AccessReview(AccessReviewDef::from(o)),
        }
    }

    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        match self {
            Object::Organization(o) => &mut o.metadata,
            Object::Group(o) => &mut o.metadata,
            Object::Member(o) => &mut o.metadata,
            Object::ApiKey(o) => &mut o.metadata,
            Object::AccessReview(o) => &mut o.metadata,
        }
    }
}

/// An `orgaccess.dev` object read from a manifest. Its `metadata.namespace` is
/// always set (to the default namespace when the document has none).
#[derive(Clone, Debug)]
pub struct Manifest {
    pub loc: Location,
    pub namespace: String,
    /// The document named its namespace.
    pub explicit_namespace: bool,
    pub name: String,
    pub object: Object,
}

impl Manifest {
    pub fn kind(&self) -> Kind {
        self.object.kind()
    }
}

/// Why a document is not a valid object. `rule` is `InvalidManifest` (YAML,
/// apiVersion, kind, types, duplicates) or `Schema` (what the CRD schema and
/// its CEL rules refuse before admission).
#[derive(Clone, Debug)]
pub struct Problem {
    pub loc: Location,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
}

pub const INVALID_MANIFEST: &str = "InvalidManifest";
pub const SCHEMA: &str = "Schema";

/// Everything read from the given paths.
#[derive(Debug, Default)]
pub struct Loaded {
    pub manifests: Vec<Manifest>,
    pub problems: Vec<Problem>,
    /// Documents of other kinds, skipped (`-v` prints them).
    pub ignored: Vec<(Location, String)>,
    /// Paths that could not be read at all, and why.
    pub unreadable: Vec<(String, String)>,
}

const GROUP_VERSION: &str = "orgaccess.dev/v1alpha1";
const KINDS: [&str; 5] = ["AccessReview", "ApiKey", "Group", "Member", "Organization"];

/// An input: a file path, or standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn display(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

fn is_manifest_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Expands directories (sorted, recursive, hidden entries and symlinked
/// directories skipped) into the manifest files they hold.
fn expand(paths: &[PathBuf], unreadable: &mut Vec<(String, String)>) -> Vec<Input> {
    fn walk(dir: &Path, out: &mut Vec<Input>, unreadable: &mut Vec<(String, String)>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                unreadable.push((dir.display().to_string(), e.to_string()));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                walk(&p, out, unreadable);
            } else if is_manifest_file(&p) {
                out.push(Input::File(p));
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut out, unreadable),
            Ok(_) => out.push(Input::File(p.clone())),
            Err(e) => unreadable.push((p.display().to_string(), e.to_string())),
        }
    }
    out
}

fn read_input(input: &Input) -> std::io::Result<Vec<u8>> {
    match input {
        Input::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf)?;
            Ok(buf)
        }
        Input::File(p) => std::fs::read(p),
    }
}

/// Reads every path; documents without `metadata.namespace` get `default_namespace`.
pub fn load(paths: &[PathBuf], default_namespace: &str) -> Loaded {
    let mut loaded = Loaded::default();
    let inputs = expand(paths, &mut loaded.unreadable);
    let mut stdin_read = false;
    for input in inputs {
        if input == Input::Stdin {
            if stdin_read {
                continue;
            }
            stdin_read = true;
        }
        let file = input.display();
        match read_input(&input) {
            Err(e) => loaded.unreadable.push((file, e.to_string())),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => loaded.problems.push(Problem {
                    loc: Location {
                        file,
                        document: 0,
                        line: 0,
                    },
                    kind: None,
                    namespace: None,
                    name: None,
                    rule: INVALID_MANIFEST,
                    field: None,
                    message: "not UTF-8 text; manifests are YAML or JSON".into(),
                }),
                Ok(text) => parse_text(&file, &text, default_namespace, &mut loaded),
            },
        }
    }
    mark_duplicates(&mut loaded);
    loaded
}

/// Rendered charts and kustomizations can hold thousands of documents: the
/// parser's limits are raised well above an organization's size (the alias
/// and depth limits that guard against hostile input stay).
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.with_snippet = false;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_events = 100_000_000;
    budget.max_nodes = 50_000_000;
    budget.max_total_scalar_bytes = 1024 * 1024 * 1024;
    o.budget = Some(budget);
    o
}

/// The library's message, without advice meant for programmers.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    e.to_string()
        .replace(
            ", set DuplicateKeyPolicy in Options if acceptable",
            "; give each key once",
        )
        .trim_start_matches("error: ")
        .to_string()
}

/// Parses one file's text into `loaded`.
pub fn parse_text(file: &str, text: &str, default_namespace: &str, loaded: &mut Loaded) {
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        match serde_saphyr::from_multiple_with_options(text, yaml_options()) {
            Ok(d) => d,
            Err(e) => {
                loaded.problems.push(Problem {
                    loc: Location {
                        file: file.into(),
                        document: 0,
                        line: e.location().map_or(0, |l| l.line()),
                    },
                    kind: None,
                    namespace: None,
                    name: None,
                    rule: INVALID_MANIFEST,
                    field: None,
                    message: format!("invalid YAML: {}", yaml_message(&e)),
                });
                return;
            }
        };
    let starts: Vec<Option<usize>> = docs
        .iter()
        .map(|d| {
            d.referenced
                .span()
                .byte_offset()
                .and_then(|o| usize::try_from(o).ok())
        })
        .collect();
    for (i, doc) in docs.into_iter().enumerate() {
        let loc = Location {
            file: file.into(),
            document: i + 1,
            line: doc.referenced.line(),
        };
        // The document's own text, to locate typing errors precisely.
        let slice = match (starts[i], starts.get(i + 1).copied().flatten()) {
            (Some(a), Some(b)) if a <= b && b <= text.len() => text.get(a..b),
            (Some(a), None) if a <= text.len() => text.get(a..),
            _ => None,
        };
        let doc_text = slice.map(|s| (s, doc.referenced.line(), doc.referenced.column()));
        parse_document(loc, doc.value, doc_text, default_namespace, loaded);
    }
}

fn problem(loc: &Location, rule: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        loc: loc.clone(),
        kind: None,
        namespace: None,
        name: None,
        rule,
        field: None,
        message: message.into(),
    }
}

type DocText<'a> = Option<(&'a str, u64, u64)>;

fn parse_document(
    loc: Location,
    value: Value,
    doc_text: DocText,
    default_namespace: &str,
    loaded: &mut Loaded,
) {
    let Value::Object(map) = &value else {
        loaded.problems.push(problem(
            &loc,
            INVALID_MANIFEST,
            "the document is not a Kubernetes object (a mapping with apiVersion, kind and metadata)",
        ));
        return;
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str);
    let kind = map.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        loaded.problems.push(problem(
            &loc,
            INVALID_MANIFEST,
            "the document has no apiVersion or kind; every Kubernetes object names both",
        ));
        return;
    };
    let name_of = |v: &Value| {
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // `kubectl get -o yaml` wraps several objects in a v1 List.
    if api_version == "v1" && kind == "List" {
        let items = map
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            parse_document(loc.clone(), item, None, default_namespace, loaded);
        }
        return;
    }
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    if group != "orgaccess.dev" {
        let name = name_of(&value).unwrap_or_else(|| "(unnamed)".into());
        loaded
            .ignored
            .push((loc, format!("{api_version} {kind} {name}")));
        return;
    }
    let mut p = problem(&loc, INVALID_MANIFEST, "");
    p.kind = Some(kind.to_string());
    p.name = name_of(&value);
    if api_version != GROUP_VERSION {
        p.field = Some("apiVersion".into());
        p.message = format!(
            "unknown version '{api_version}' of orgaccess.dev; this orgaccess serves {GROUP_VERSION}"
        );
        loaded.problems.push(p);
        return;
    }
    let object = match kind {
        "Organization" => typed::<Organization>(&value, doc_text).map(Object::Organization),
        "Group" => typed::<Group>(&value, doc_text).map(Object::Group),
        "Member" => typed::<Member>(&value, doc_text).map(Object::Member),
        "ApiKey" => typed::<ApiKey>(&value, doc_text).map(Object::ApiKey),
        "AccessReview" => typed::<AccessReview>(&value, doc_text).map(Object::AccessReview),
        other => {
            p.field = Some("kind".into());
            p.message = format!(
                "unknown kind '{other}' in {GROUP_VERSION}; the kinds are {}",
                KINDS.join(", ")
            );
            loaded.problems.push(p);
            return;
        }
    };
    let mut object = match object {
        Ok(o) => o,
        Err((line, message)) => {
            if line > 0 {
                p.loc.line = line;
            }
            p.message = format!("invalid {kind}: {message}");
            loaded.problems.push(p);
            return;
        }
    };
    let meta = object.meta_mut();
    let Some(name) = meta.name.clone().filter(|n| !n.is_empty()) else {
        p.field = Some("metadata.name".into());
        p.message = format!(
            "{kind} has no metadata.name; name every object (generateName is not supported by orgaccess)"
        );
        loaded.problems.push(p);
        return;
    };
    let explicit_namespace = meta.namespace.as_deref().is_some_and(|n| !n.is_empty());
    let namespace = if explicit_namespace {
        meta.namespace.clone().unwrap_or_default()
    } else {
        meta.namespace = Some(default_namespace.to_string());
        default_namespace.to_string()
    };
    let manifest = Manifest {
        loc,
        namespace,
        explicit_namespace,
        name,
        object,
    };
    let mut found = unknown_fields(&value, &manifest);
    found.extend(schema_problems(&value, &manifest));
    if found.is_empty() {
        loaded.manifests.push(manifest);
    } else {
        loaded.problems.extend(found);
    }
}

/// Converts a document into a typed object. On failure, the error's line in
/// the file (0 if unknown) and a message; the document's text is parsed again
/// on its own to find the line of the offending field.
fn typed<T: DeserializeOwned>(value: &Value, doc_text: DocText) -> Result<T, (u64, String)> {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => Ok(t),
        Err(json_err) => {
            let located = doc_text.and_then(|(text, line0, col0)| {
                let e =
                    serde_saphyr::from_multiple_with_options::<T>(text, yaml_options()).err()?;
                let at = e.location()?;
                let line = line0 + at.line().saturating_sub(1);
                let column = if at.line() == 1 {
                    col0 + at.column().saturating_sub(1)
                } else {
                    at.column()
                };
                let msg = yaml_message(&e);
                let msg = match msg.rsplit_once(" at line ") {
                    Some((m, _)) => m.to_string(),
                    None => msg,
                };
                Some((line, format!("{msg} (line {line}, column {column})")))
            });
            Err(located.unwrap_or((0, json_err.to_string())))
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Fields the document sets that the object's schema does not know. The API
/// server refuses them under strict field validation (kubectl's default) and
/// drops them otherwise, so a typo such as `privilege:` would silently grant
/// nothing.
fn unknown_fields(original: &Value, m: &Manifest) -> Vec<Problem> {
    fn walk(orig: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
        match (orig, known) {
            (Value::Object(o), Value::Object(k)) => {
                for (key, v) in o {
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match k.get(key) {
                        Some(kv) => walk(v, kv, &p, out),
                        None if is_empty(v) => {}
                        None => out.push(p),
                    }
                }
            }
            (Value::Array(o), Value::Array(k)) if o.len() == k.len() => {
                for (i, (a, b)) in o.iter().zip(k).enumerate() {
                    walk(a, b, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let known = match &m.object {
        Object::Organization(o) => serde_json::to_value(o),
        Object::Group(o) => serde_json::to_value(o),
        Object::Member(o) => serde_json::to_value(o),
        Object::ApiKey(o) => serde_json::to_value(o),
        Object::AccessReview(o) => serde_json::to_value(o),
    };
    let Ok(known) = known else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    walk(original, &known, "", &mut fields);
    fields
        .into_iter()
        .map(|f| {
            manifest_problem(
                m,
                SCHEMA,
                &f,
                format!(
                    "unknown field '{f}' in {}; the API server refuses it (strict field validation) or drops it. Check the spelling (`kubectl explain {}.spec`)",
                    m.kind(),
                    m.kind().as_str().to_lowercase()
                ),
            )
        })
        .collect()
}

fn manifest_problem(m: &Manifest, rule: &'static str, field: &str, message: String) -> Problem {
    Problem {
        loc: m.loc.clone(),
        kind: Some(m.kind().to_string()),
        namespace: Some(m.namespace.clone()),
        name: Some(m.name.clone()),
        rule,
        field: Some(field.to_string()),
        message,
    }
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn valid_name(n: &str) -> bool {
    n.len() <= 253
        && n.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// What the apiserver refuses before the webhook sees the object: an invalid
/// name, and what the CRD's own schema and CEL rules refuse of `original`
/// (the document as written). The webhook's rules are not repeated here.
fn schema_problems(original: &Value, m: &Manifest) -> Vec<Problem> {
    let mut out = Vec::new();
    for (what, n) in [
        ("metadata.name", Some(&m.name)),
        ("metadata.namespace", Some(&m.namespace)),
    ] {
        if let Some(n) = n
            && !valid_name(n)
        {
            out.push(manifest_problem(
                m,
                SCHEMA,
                what,
                format!(
                    "{what} '{n}' is not a valid Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
                ),
            ));
        }
    }
    // The CRD's own schema and CEL rules (crate::cli::schema), as the
    // apiserver would judge them.
    out.extend(
        super::schema::problems(m.kind(), original)
            .into_iter()
            .map(|p| {
                let message = format!("{}: {}", p.field, p.message);
                manifest_problem(m, SCHEMA, &p.field, message)
            }),
    );
    out
}

/// A second definition of the same object is a problem; the first one stays.
/// (A second Organization in a namespace is judged by the admission rules.)
fn mark_duplicates(loaded: &mut Loaded) {
    let mut seen: BTreeMap<(Kind, String, String), Location> = BTreeMap::new();
    let mut keep = Vec::with_capacity(loaded.manifests.len());
    for m in std::mem::take(&mut loaded.manifests) {
        let key = (m.kind(), m.namespace.clone(), m.name.clone());
        if let Some(first) = seen.get(&key) {
            let message = format!("defined twice (first at {first}); define each object once");
            loaded.problems.push(manifest_problem(
                &m,
                INVALID_MANIFEST,
                "metadata.name",
                message,
            ));
            continue;
        }
        seen.insert(key, m.loc.clone());
        keep.push(m);
    }
    loaded.manifests = keep;
}

impl Manifest {
    /// The object's namespace-qualified name, e.g. `acme/limited-administrators`.
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The objects of one kind in a list of manifests.
pub fn organizations(ms: &[Manifest]) -> impl Iterator<Item = &Organization> {
    ms.iter().filter_map(|m| match &m.object {
        Object::Organization(o) => Some(o),
        _ => None,
    })
}
pub fn groups(ms: &[Manifest]) -> impl Iterator<Item = &Group> {
    ms.iter().filter_map(|m| match &m.object {
        Object::Group(o) => Some(o),
        _ => None,
    })
}
pub fn members(ms: &[Manifest]) -> impl Iterator<Item = &Member> {
    ms.iter().filter_map(|m| match &m.object {
        Object::Member(o) => Some(o),
        _ => None,
    })
}
pub fn api_keys(ms: &[Manifest]) -> impl Iterator<Item = &ApiKey> {
    ms.iter().filter_map(|m| match &m.object {
        Object::ApiKey(o) => Some(o),
        _ => None,
    })
}

pub fn access_reviews(ms: &[Manifest]) -> impl Iterator<Item = &AccessReview> {
    ms.iter().filter_map(|m| match &m.object {
        Object::AccessReview(o) => Some(o),
        _ => None,
    })
}

/// Namespace of a typed object (always set for loaded manifests).
pub fn namespace_of<K: kube::Resource>(k: &K) -> String {
    k.namespace().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Loaded {
        let mut l = Loaded::default();
        parse_text("t.yaml", text, "default", &mut l);
        mark_duplicates(&mut l);
        l
    }

    #[test]
    fn documents_are_numbered_and_located() {
        let l = parse(
            "# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec: {}\n",
        );
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(l.ignored.len(), 1);
        assert_eq!(l.ignored[0].0.document, 1);
        assert_eq!(l.manifests.len(), 1);
        let m = &l.manifests[0];
        assert_eq!((m.loc.document, m.loc.line), (2, 8));
        assert_eq!(m.namespace, "default");
        assert!(!m.explicit_namespace);
    }

    #[test]
    fn typing_errors_point_at_the_field() {
        let l = parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec:\n  privileges:\n    - {service: Content, domain: Sources, level: Everything}\n",
        );
        assert_eq!(l.problems.len(), 1);
        let p = &l.problems[0];
        assert_eq!(p.loc.line, 10, "{p:?}");
        assert!(
            p.message
                .starts_with("invalid Group: unknown variant `Everything`"),
            "{}",
            p.message
        );
    }

    #[test]
    fn invalid_yaml_unknown_kinds_and_fields_are_problems() {
        let l = parse("a: [1, 2\n");
        assert!(l.problems[0].message.starts_with("invalid YAML"));
        let l = parse("apiVersion: orgaccess.dev/v1alpha1\nkind: Team\nmetadata: {name: t}\n");
        assert!(l.problems[0].message.contains("unknown kind 'Team'"));
        let l = parse(
            "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec:\n  privilege: []\n  privilegez: [{a: 1}]\n",
        );
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert_eq!(l.problems[0].field.as_deref(), Some("spec.privilegez"));
        let l = parse("- just\n- a list\n");
        assert!(l.problems[0].message.contains("not a Kubernetes object"));
    }

    #[test]
    fn duplicates_are_reported_once() {
        let g = "apiVersion: orgaccess.dev/v1alpha1\nkind: Group\nmetadata: {name: g}\nspec: {}\n";
        let l = parse(&format!("{g}---\n{g}"));
        assert_eq!(l.manifests.len(), 1);
        assert_eq!(l.problems.len(), 1);
        assert!(l.problems[0].message.contains("defined twice"));
    }
}
