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

use super::check::{Identity, check_create, def_of};
use super::output::{OutputFormat, Styles};
use super::source::{self, Org, SourceArgs, Subject};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, emit_err, fail};
use crate::api::{Group, GroupSpec};
use crate::core::model::GroupDef;
use crate::core::rules;

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
    /// Check the duplicate as this Kubernetes user (the Duplicate rule: strictly more
    /// privileges than the source), not as a trusted principal.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
    /// A Kubernetes group of the --as user. Repeatable.
    #[arg(long = "as-group", value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
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
    let def = def_of(&super::manifest::Object::Group(group.clone()));
    let identity = Identity::new(args.as_user.clone(), args.as_groups.clone());
    let violations = check_create(&org.state, &new_name, &def, &identity, Timestamp::now());
    if !violations.is_empty() {
        let s = Styles::stderr();
        emit_err(&format!(
            "{}: {}\n",
            s.error("denied"),
            rules::denial_message("Group", &org.namespace, &new_name, &violations)
        ));
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
