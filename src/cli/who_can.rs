//! `orgaccess who-can VERB SERVICE/DOMAIN[/RESOURCE]`: the active members and
//! enabled API keys whose effective privileges cover the action, and through
//! which groups (or which of the key's own grants).

use anyhow::{anyhow, bail};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde::Serialize;

use super::output::OutputFormat;
use super::output::{Style, Styles, Table, cell, styled};
use super::source::{self, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_OK, emit, fail};
use crate::core::catalog::{self, Create, DomainId, Service};
use crate::core::effective::{
    Grantee, access_grants, api_key_spec_privileges, member_effective, resolve_grantees,
};
use crate::core::privilege::{Abilities, Grant, Level, PrivilegeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// View (on a resource, or View all).
    View,
    /// Edit (on a resource, or Edit all).
    Edit,
    /// Can Create.
    Create,
    /// An on/off domain's Allowed.
    Allowed,
    /// Push usage-analytics events.
    Push,
}

#[derive(Args, Clone, Debug)]
pub struct WhoCanArgs {
    /// What to do.
    #[arg(value_enum)]
    pub verb: Verb,
    /// SERVICE/DOMAIN or SERVICE/DOMAIN/RESOURCE, e.g. Content/Sources/jira
    /// (`orgaccess catalog` lists the domains).
    pub target: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format: a table (human) or JSON.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// A parsed target and the privileges the action needs.
#[derive(Debug)]
pub struct Need {
    pub domain: DomainId,
    pub resource: Option<String>,
    pub set: PrivilegeSet,
}

/// Parses `SERVICE/DOMAIN[/RESOURCE]` (service and domain in any case) and
/// builds the privileges `verb` needs there.
pub fn need(verb: Verb, target: &str) -> anyhow::Result<Need> {
    let mut parts = target.splitn(3, '/');
    let (Some(svc), Some(dom)) = (parts.next(), parts.next()) else {
        bail!("'{target}' is not SERVICE/DOMAIN[/RESOURCE], e.g. Content/Sources/jira");
    };
    let resource = parts.next().filter(|r| !r.is_empty()).map(str::to_string);
    let service = Service::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(svc))
        .ok_or_else(|| {
            anyhow!(
                "unknown service '{svc}'; the services are {}",
                Service::ALL.map(|s| s.as_str()).join(", ")
            )
        })?;
    let name = catalog::domains_of(service)
        .find(|d| d.eq_ignore_ascii_case(dom))
        .ok_or_else(|| {
            let hint = catalog::suggest(service, dom)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            anyhow!(
                "unknown domain '{dom}' in service {service}{hint}; valid domains of {service}: {}",
                catalog::domains_of(service).collect::<Vec<_>>().join(", ")
            )
        })?;
    let domain = catalog::lookup(service, name).ok_or_else(|| anyhow!("unknown domain"))?;
    let d = catalog::domain(domain);
    let o = d.offers;
    let what = format!("{service}/{name}");
    if resource.is_some() && o.custom.is_none() {
        bail!(
            "{what} has no per-resource levels, so it takes no RESOURCE; ask about {what} as a whole"
        );
    }
    let mut set = PrivilegeSet::new();
    let level = |l: Level| Grant {
        level: l,
        ..Grant::default()
    };
    let ability = |a: Abilities| Grant {
        abilities: a,
        ..Grant::default()
    };
    match verb {
        Verb::View | Verb::Edit => {
            let l = if verb == Verb::View {
                Level::View
            } else {
                Level::Edit
            };
            let offered = if verb == Verb::View { o.view } else { o.edit };
            if !offered {
                bail!("{what} does not offer {verb:?}; {}", offers_hint(&what, o));
            }
            match &resource {
                Some(r) => set.add_resource(domain, r, l),
                None => set.set(domain, level(l)),
            }
        }
        Verb::Create | Verb::Allowed | Verb::Push => {
            if let Some(r) = &resource {
                bail!("{verb:?} applies to {what} as a whole, not to resource '{r}'; drop /{r}");
            }
            let (offered, a) = match verb {
                Verb::Create => (o.create != Create::No, Abilities::CREATE),
                Verb::Allowed => (o.allowed, Abilities::ALLOWED),
                _ => (o.push, Abilities::PUSH),
            };
            if !offered {
                bail!("{what} does not offer {verb:?}; {}", offers_hint(&what, o));
            }
            set.set(domain, ability(a));
        }
    }
    Ok(Need {
        domain,
        resource,
        set,
    })
}

fn offers_hint(what: &str, o: catalog::Offers) -> String {
    let mut verbs = Vec::new();
    if o.view {
        verbs.push("view");
    }
    if o.edit {
        verbs.push("edit");
    }
    if o.create != Create::No {
        verbs.push("create");
    }
    if o.allowed {
        verbs.push("allowed");
    }
    if o.push {
        verbs.push("push");
    }
    format!("ask `who-can {} {what}`", verbs.join("|"))
}

/// One member or API key that can.
#[derive(Clone, Debug, Serialize)]
pub struct Holder {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The member's username, or the key's display name.
    pub identity: String,
    /// The groups (for a member) or the key's grants (own privileges, access
    /// lists) that give it.
    pub through: Vec<String>,
}

pub fn holders(org: &source::Org, need: &Need, now: Timestamp) -> Vec<Holder> {
    let state = &org.state;
    let grantees = resolve_grantees(state);
    let mut out = Vec::new();
    for m in state.members.values() {
        let eff = member_effective(state, &grantees, m, now);
        // Pending and expired members hold nothing (except through identity sets).
        if !eff.privileges.covers(&need.set) {
            continue;
        }
        let mut through: Vec<String> = eff
            .memberships
            .iter()
            .filter(|ms| ms.active)
            .filter(|ms| {
                grantees
                    .groups
                    .get(&ms.group)
                    .is_some_and(|g| g.covers(&need.set))
            })
            .map(|ms| ms.group.clone())
            .collect();
        through.sort();
        through.dedup();
        out.push(Holder {
            kind: "Member",
            namespace: org.namespace.clone(),
            name: m.name.clone(),
            identity: m.identity.username.clone(),
            through,
        });
    }
    let access = access_grants(state);
    for k in state.api_keys.values().filter(|k| k.enabled) {
        let Some(set) = grantees.api_keys.get(&k.name) else {
            continue;
        };
        if !set.covers(&need.set) {
            continue;
        }
        let mut through = Vec::new();
        if api_key_spec_privileges(k).covers(&need.set) {
            through.push(match k.template {
                Some(t) if k.privileges.is_empty() => format!("template {t:?}"),
                _ => "own privileges".to_string(),
            });
        }
        for (d, obj, level) in access
            .get(&Grantee::ApiKey(k.name.clone()))
            .into_iter()
            .flatten()
        {
            let mut one = PrivilegeSet::new();
            one.add_resource(*d, obj, *level);
            if one.covers(&need.set) {
                let kind = if *d == *catalog::GROUPS {
                    "Group"
                } else {
                    "ApiKey"
                };
                through.push(format!("access list of {kind} {obj}"));
            }
        }
        out.push(Holder {
            kind: "ApiKey",
            namespace: org.namespace.clone(),
            name: k.name.clone(),
            identity: k.display_name.clone().unwrap_or_default(),
            through,
        });
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

pub async fn run(args: WhoCanArgs, cluster: &ClusterArgs) -> i32 {
    let need = match need(args.verb, &args.target) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    let org = match source::organization(&args.source, cluster, Subject::Any).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let list = holders(&org, &need, Timestamp::now());
    let text = args.output.render(&list, || {
        let s = Styles::stdout();
        let d = catalog::domain(need.domain);
        let target = match &need.resource {
            Some(r) => format!("{}/{}/{r}", d.service, d.name),
            None => format!("{}/{}", d.service, d.name),
        };
        let verb = format!("{:?}", args.verb).to_lowercase();
        let mut out = format!(
            "{} {verb} {target} in namespace {}:\n",
            s.bold("Who can"),
            org.namespace
        );
        if list.is_empty() {
            out.push_str("nobody (no active member or enabled API key)\n");
        } else {
            let mut t = Table::new(&["KIND", "NAME", "IDENTITY", "THROUGH"]);
            for h in &list {
                t.row(vec![
                    cell(h.kind),
                    styled(h.name.clone(), Style::Bold),
                    cell(if h.identity.is_empty() {
                        "-".into()
                    } else {
                        h.identity.clone()
                    }),
                    cell(h.through.join(", ")),
                ]);
            }
            out.push_str(&t.render(s));
        }
        out
    });
    emit(&text);
    EXIT_OK
}
