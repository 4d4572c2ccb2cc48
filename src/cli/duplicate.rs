//! `orgaccess duplicate group NAME`: prints the manifest of a duplicate of a
//! group, as the console's Duplicate does: `spec.duplicateOf` names the
//! source, the display name is `<source display name>_copy`, and the source's
//! template, privileges and identity sets are copied (not `builtIn`, which
//! only the operator sets, and not the access list, which is about the source).
//!
//! The duplicate is checked with the admission rules before it is printed:
//! as a trusted principal (CatalogValidity and AdministratorsProtected only), or with `--as USER` as that user (the
//! duplicate rule needs privileges strictly above the source group's).

use anyhow::bail;
use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::identity::{AsArgs, asker};
use super::output::{OutputFormat, Styles};
use super::source::{self, Org, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, emit_err, fail};
use crate::api::{Group, GroupSpec};
use crate::core::model::{GroupDef, Kind};
use crate::core::rules::Operation;
use crate::judge::{self, Plain};

#[derive(Subcommand, Clone, Debug)]
pub enum DuplicateCommand {
    /// Print a duplicate of a group as a Group manifest.
    Group(DuplicateArgs),
}

#[derive(Args, Clone, Debug)]
pub struct DuplicateArgs {
    /// The group to duplicate (metadata.name).
    pub name: String,
    /// metadata.name of the duplicate (default: `<NAME>-copy`).
    #[arg(long = "name", value_name = "NEW")]
    pub new_name: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    // The duplicate is checked as this identity (the Duplicate rule: strictly
    // more privileges than the source), or as a trusted principal.
    #[command(flatten)]
    pub who: AsArgs,
    /// The manifest as YAML (default) or JSON.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// The duplicate of `source` named `new_name`.
pub fn duplicate(org: &Org, source: &GroupDef, new_name: &str) -> Group {
    let mut g = Group::new(
        new_name,
        GroupSpec {
            display_name: Some(source.copy_display_name()),
            built_in: None,
            template: source.template,
            privileges: source.privileges.clone(),
            identity_sets: source.identity_sets.clone(),
            access: Vec::new(),
            duplicate_of: Some(source.name.clone()),
            owners: Vec::new(),
            review_every: None,
        },
    );
    if org.explicit_namespace {
        g.metadata.namespace = Some(org.namespace.clone());
    }
    g
}

fn build(args: &DuplicateArgs, org: &Org) -> anyhow::Result<Group> {
    let Some(src) = org.state.groups.get(&args.name) else {
        bail!("no Group '{}' in namespace {}", args.name, org.namespace);
    };
    let new_name = args
        .new_name
        .clone()
        .unwrap_or_else(|| format!("{}-copy", args.name));
    if org.state.groups.contains_key(&new_name) {
        bail!(
            "Group '{new_name}' already exists in namespace {}; choose another name with --name",
            org.namespace
        );
    }
    Ok(duplicate(org, src, &new_name))
}

pub async fn run(cmd: DuplicateCommand, cluster: &ClusterArgs) -> i32 {
    let DuplicateCommand::Group(args) = cmd;
    let org = match source::organization(&args.source, cluster, Subject::Group(&args.name)).await {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let group = match build(&args, &org) {
        Ok(g) => g,
        Err(e) => return fail(&e),
    };
    let new_name = group.metadata.name.clone().unwrap_or_default();
    let def = super::manifest::Object::Group(group.clone()).def();
    let identity = args.who.identity();
    let request = judge::Request {
        kind: Kind::Group,
        operation: Operation::Create,
        namespace: &org.namespace,
        name: &new_name,
        old: None,
        new: Some(&def),
        stored_key: None,
        mutated: false,
    };
    let known = Plain::new(org.state.clone());
    let judgement = judge::judge(&known, asker(identity.as_ref()), &request, Timestamp::now());
    if let Some(message) = judgement.message {
        let s = Styles::stderr();
        emit_err(&format!("{}: {message}\n", s.error("denied")));
        return EXIT_FINDINGS;
    }
    let manifest = args.output.document(&group, OutputFormat::Yaml);
    if args.output == OutputFormat::Json {
        emit(&manifest);
    } else {
        emit(&format!(
            "# Duplicate of Group {}/{} (orgaccess duplicate group).\n{manifest}",
            org.namespace, args.name
        ));
    }
    EXIT_OK
}
