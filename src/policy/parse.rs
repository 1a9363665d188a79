//! Loading policy files: read, merge in a stated order, and validate into a [`Model`],
//! reporting every error at once, each at its file, line and column.
//!
//! Merge order: the `*.toml` files of the directory sorted by file name (byte order),
//! skipping hidden files and the operator registry; `[[network]]`, `[[rule]]` and `[[test]]`
//! entries are concatenated in that order, and exactly one file holds `[policy]`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde_spanned::Spanned;

use crate::country::CountrySet;
use crate::diag::{Errors, Located, SourceFile};
use crate::policy::decision::Mode;
use crate::policy::model::{Action, RawFile, RawMode, RawNetwork, RawPolicy, RawRule, RawTest};
use crate::policy::normal::{Criteria, Model, NetworkSpec, Origin, RuleSpec, TestSpec};
use crate::policy::values::{opt, reason_by_name, valid_id, METHODS};
use crate::resolve::Host;

/// The operator registry lives next to the policy files but is not one of them.
pub const REGISTRY_FILE: &str = "operators.toml";

/// Ports allowed when `[policy]` does not say.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Reads the policy files of `dir` (see the module doc for the order) and validates them.
/// `exclude` names further files to skip; [`REGISTRY_FILE`] is always skipped.
pub fn load_dir(dir: &Path, exclude: &[&str]) -> Result<Model, Errors> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| whole(dir, format!("cannot read policy directory: {e}")))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| whole(dir, format!("cannot read policy directory: {e}")))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let skipped = name.starts_with('.')
            || !name.ends_with(".toml")
            || name == REGISTRY_FILE
            || exclude.contains(&name);
        if !skipped && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if paths.is_empty() {
        return Err(whole(
            dir,
            "no policy files (*.toml) in this directory; add one with a [policy] table".into(),
        )
        .into());
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    for path in &paths {
        match SourceFile::read(path) {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(Errors(errors));
    }
    load_sources(files)
}

/// Validates policy files given as text, merged in the order given.
pub fn load_sources(files: Vec<SourceFile>) -> Result<Model, Errors> {
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(files.len());
    for file in &files {
        match toml::from_str::<RawFile>(&file.text) {
            Ok(raw) => parsed.push((file, raw)),
            // Every syntax error of the file at once, each at its line and column.
            Err(e) => errors.extend(crate::config::messages::toml_errors(file, &e).0),
        }
    }
    let mut v = Validator {
        errors,
        ..Validator::default()
    };
    for (file, raw) in &parsed {
        v.file(file, raw);
    }
    // A file that did not parse may hold the [policy] table or the first of two rule ids:
    // cross-file checks would only add false errors.
    let all_parsed = parsed.len() == files.len();
    let model = v.finish(&files, all_parsed);
    match model {
        Some(model) if v.errors.is_empty() => Ok(model),
        _ => Err(Errors(v.errors)),
    }
}

fn whole(path: &Path, message: String) -> Located {
    Located {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message,
    }
}

/// A rule before the policy defaults fill its unset criteria.
pub(super) struct RuleDraft {
    spec: RuleSpec,
    allowed_locations: Option<CountrySet>,
    allowed_operators: Option<CountrySet>,
    allowed_ports: Option<Vec<u16>>,
    unknown_location: Option<crate::policy::model::UnknownLocation>,
    unknown_operator: Option<crate::policy::model::UnknownOperator>,
    no_asn: Option<crate::policy::model::UnknownOperator>,
    anycast_location: Option<crate::policy::model::AnycastLocation>,
    required_qualifications: Vec<Arc<str>>,
    ip_selection: Option<crate::policy::model::IpSelection>,
}

struct PolicyDraft {
    origin: Origin,
    name: Arc<str>,
    mode: Mode,
    description: Option<Arc<str>>,
    defaults: Option<Criteria>,
}

#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<Located>,
    policies: Vec<PolicyDraft>,
    networks: Vec<(NetworkSpec, Origin)>,
    rules: Vec<RuleDraft>,
    tests: Vec<(TestSpec, Option<Spanned<String>>, usize)>,
    /// The file index of each test's `expect_rule`, to locate an unknown one.
    test_files: Vec<SourceFile>,
}

/// One file's context: turns spans into places. `SourceFile::line_col` scans from the
/// start of the file, which is quadratic over thousands of rules; a line index is not.
pub(super) struct At<'a> {
    pub(super) file: &'a SourceFile,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl<'a> At<'a> {
    fn new(file: &'a SourceFile) -> Self {
        let line_starts = std::iter::once(0)
            .chain(file.text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        At { file, line_starts }
    }

    pub(super) fn origin(&self, span: Range<usize>) -> Origin {
        let offset = span.start.min(self.file.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .file
            .text
            .get(start..offset)
            .map_or(1, |t| t.chars().count() + 1);
        Origin {
            path: self.file.path.clone(),
            line,
            column,
        }
    }
}

impl Validator {
    pub(super) fn err(&mut self, at: &At<'_>, span: Range<usize>, message: impl Into<String>) {
        let o = at.origin(span);
        self.errors.push(Located {
            path: o.path,
            line: o.line,
            column: o.column,
            message: message.into(),
        });
    }

    fn file(&mut self, file: &SourceFile, raw: &RawFile) {
        let at = At::new(file);
        if let Some(p) = &raw.policy {
            self.policy(&at, p);
        }
        for n in &raw.network {
            self.network(&at, n);
        }
        for r in &raw.rule {
            self.rule(&at, r);
        }
        self.test_files.push(file.clone());
        let file_index = self.test_files.len() - 1;
        for t in &raw.test {
            self.test(&at, t, file_index);
        }
    }

    fn policy(&mut self, at: &At<'_>, p: &Spanned<RawPolicy>) {
        let raw = p.get_ref();
        let name = raw.name.get_ref().trim();
        if name.is_empty() {
            self.err(
                at,
                raw.name.span(),
                "policy name is empty; give the policy a name",
            );
        }
        let locations = self.countries(at, &raw.allowed_locations, "allowed_locations");
        let operators = self.countries(at, &raw.allowed_operators, "allowed_operators");
        let ports = match &raw.allowed_ports {
            Some(list) => self.ports(at, list, "allowed_ports"),
            None => Some(DEFAULT_PORTS.to_vec()),
        };
        let defaults = match (locations, operators, ports) {
            (Some(l), Some(o), Some(ports)) => Some(Criteria {
                allowed_locations: l,
                allowed_operators: o,
                unknown_location: raw.unknown_location,
                unknown_operator: raw.unknown_operator,
                no_asn: raw.no_asn,
                anycast_location: raw.anycast_location,
                required_qualifications: Vec::new(),
                ip_selection: raw.ip_selection,
                allowed_ports: ports,
            }),
            _ => None,
        };
        self.policies.push(PolicyDraft {
            origin: at.origin(p.span()),
            name: name.into(),
            mode: match raw.mode {
                RawMode::Enforce => Mode::Enforce,
                RawMode::Monitor => Mode::Monitor,
            },
            description: raw.description.as_deref().map(Arc::from),
            defaults,
        });
    }

    fn network(&mut self, at: &At<'_>, n: &Spanned<RawNetwork>) {
        let raw = n.get_ref();
        let cidr = self.cidr(at, &raw.cidr);
        let location = raw.location.as_ref().and_then(|c| self.country(at, c));
        let operator = raw.operator.as_ref().and_then(|c| self.country(at, c));
        let label: Arc<str> = match &raw.label {
            Some(l) => l.trim().into(),
            None => raw.cidr.get_ref().trim().into(),
        };
        if let Some(cidr) = cidr {
            let spec = NetworkSpec {
                cidr,
                location,
                operator,
                label,
            };
            self.networks.push((spec, at.origin(raw.cidr.span())));
        }
    }

    fn rule(&mut self, at: &At<'_>, r: &Spanned<RawRule>) {
        let raw = r.get_ref();
        let id = raw.id.get_ref();
        if !valid_id(id) {
            self.err(
                at,
                raw.id.span(),
                format!("rule id `{id}` must be 1 to 64 letters, digits, `-`, `_` or `.` (it is a metric label)"),
            );
        }
        let action = raw
            .action
            .as_ref()
            .map_or(Action::Enforce, |a| *a.get_ref());
        let clients = opt(raw.clients.as_ref().map(|l| self.cidrs(at, l, "clients")));
        let hosts = opt(raw.hosts.as_ref().map(|l| self.hosts(at, l)));
        let ports = opt(raw.ports.as_ref().map(|l| self.ports(at, l, "ports")));
        let methods = opt(raw.methods.as_ref().map(|l| self.methods(at, l)));
        let paths = opt(raw.paths.as_ref().map(|l| self.paths(at, l)));
        let allowed_locations = raw
            .allowed_locations
            .as_ref()
            .and_then(|l| self.countries(at, l, "allowed_locations"));
        let allowed_operators = raw
            .allowed_operators
            .as_ref()
            .and_then(|l| self.countries(at, l, "allowed_operators"));
        let allowed_ports = raw
            .allowed_ports
            .as_ref()
            .and_then(|l| self.ports(at, l, "allowed_ports"));
        let expires = raw
            .expires
            .as_ref()
            .and_then(|d| self.date(at, d, "expires"));
        let justification = raw
            .justification
            .as_ref()
            .map(|j| j.get_ref().trim())
            .filter(|j| !j.is_empty());

        // Settings that an action makes meaningless are refused rather than ignored.
        let jurisdiction_keys: [(&str, Option<Range<usize>>); 7] = [
            (
                "required_qualifications",
                raw.required_qualifications.as_ref().map(Spanned::span),
            ),
            ("no_asn", raw.no_asn.as_ref().map(Spanned::span)),
            (
                "anycast_location",
                raw.anycast_location.as_ref().map(Spanned::span),
            ),
            (
                "allowed_locations",
                raw.allowed_locations.as_ref().map(Spanned::span),
            ),
            (
                "allowed_operators",
                raw.allowed_operators.as_ref().map(Spanned::span),
            ),
            (
                "unknown_location",
                raw.unknown_location.as_ref().map(Spanned::span),
            ),
            (
                "unknown_operator",
                raw.unknown_operator.as_ref().map(Spanned::span),
            ),
        ];
        match action {
            Action::Enforce => {
                if let Some(e) = &raw.expires {
                    self.err(at, e.span(), format!("rule `{id}`: `expires` applies only to exemptions (action = \"allow\"); remove it or make the rule an exemption"));
                }
            }
            Action::Allow | Action::Block => {
                for (key, span) in jurisdiction_keys {
                    if let Some(span) = span {
                        self.err(at, span, format!("rule `{id}`: `{key}` has no effect on a rule with action = \"{}\"; remove it", action.as_str()));
                    }
                }
                if action == Action::Block {
                    if let Some(e) = &raw.expires {
                        self.err(at, e.span(), format!("rule `{id}`: `expires` applies only to exemptions (action = \"allow\"); remove it"));
                    }
                    if let Some(s) = &raw.ip_selection {
                        self.err(at, s.span(), format!("rule `{id}`: `ip_selection` has no effect on a rule with action = \"block\"; remove it"));
                    }
                }
            }
        }
        if action == Action::Allow {
            if justification.is_none() {
                let span = raw
                    .justification
                    .as_ref()
                    .map_or(raw.id.span(), Spanned::span);
                self.err(at, span, format!("exemption `{id}` (action = \"allow\") needs a non-empty `justification` saying why it is granted"));
            }
            if raw.expires.is_none() {
                self.err(at, raw.id.span(), format!("exemption `{id}` (action = \"allow\") needs `expires = YYYY-MM-DD`, the last day it applies"));
            }
        }

        self.rules.push(RuleDraft {
            spec: RuleSpec {
                id: id.as_str().into(),
                action,
                clients,
                hosts,
                ports,
                methods,
                paths,
                // Filled from the policy defaults in `finish`.
                criteria: Criteria {
                    allowed_locations: CountrySet::empty(),
                    allowed_operators: CountrySet::empty(),
                    unknown_location: Default::default(),
                    unknown_operator: Default::default(),
                    no_asn: None,
                    anycast_location: Default::default(),
                    required_qualifications: Vec::new(),
                    ip_selection: Default::default(),
                    allowed_ports: Vec::new(),
                },
                justification: justification.map(Arc::from),
                ticket: raw.ticket.as_deref().map(str::trim).map(Arc::from),
                expires,
                description: raw.description.as_deref().map(Arc::from),
                origin: at.origin(raw.id.span()),
            },
            allowed_locations,
            allowed_operators,
            allowed_ports,
            unknown_location: raw.unknown_location.as_ref().map(|s| *s.get_ref()),
            unknown_operator: raw.unknown_operator.as_ref().map(|s| *s.get_ref()),
            no_asn: raw.no_asn.as_ref().map(|s| *s.get_ref()),
            anycast_location: raw.anycast_location.as_ref().map(|s| *s.get_ref()),
            required_qualifications: raw
                .required_qualifications
                .as_ref()
                .map(|l| {
                    l.get_ref()
                        .iter()
                        .map(|q| Arc::from(q.get_ref().trim()))
                        .collect()
                })
                .unwrap_or_default(),
            ip_selection: raw.ip_selection.as_ref().map(|s| *s.get_ref()),
        });
    }

    fn test(&mut self, at: &At<'_>, t: &Spanned<RawTest>, file_index: usize) {
        let raw = t.get_ref();
        let url = raw.url.get_ref();
        let method = match &raw.method {
            Some(m) => {
                let upper = m.get_ref().to_ascii_uppercase();
                if upper == "CONNECT" || METHODS.contains(&upper.as_str()) {
                    Some(upper.into_boxed_str())
                } else {
                    self.err(
                        at,
                        m.span(),
                        format!(
                            "unknown HTTP method `{}`; use one of CONNECT, {}",
                            m.get_ref(),
                            METHODS.join(", ")
                        ),
                    );
                    None
                }
            }
            None => None,
        };
        let target = match crate::policy::cases::parse_url(url, method.as_deref()) {
            Ok(target) => Some(target),
            Err(e) => {
                self.err(at, raw.url.span(), format!("test url `{url}`: {e}"));
                None
            }
        };
        let client = match &raw.client {
            Some(c) => match c.get_ref().trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.err(
                        at,
                        c.span(),
                        format!(
                            "test client `{}` is not an IP address (e.g. \"10.20.0.5\")",
                            c.get_ref()
                        ),
                    );
                    None
                }
            },
            None => Some(IpAddr::from([127, 0, 0, 1])),
        };
        let mut resolve = Vec::new();
        if let Some(list) = &raw.resolve {
            for ip in list.get_ref() {
                match ip.get_ref().trim().parse::<IpAddr>() {
                    Ok(addr) => resolve.push(addr),
                    Err(_) => self.err(
                        at,
                        ip.span(),
                        format!("`{}` in resolve is not an IP address", ip.get_ref()),
                    ),
                }
            }
        }
        if let Some(target) = &target {
            match (&target.destination.host, &raw.resolve) {
                (Host::Name(name), None) => self.err(at, raw.url.span(), format!("test of `{name}` needs `resolve = [\"…\"]`, the addresses the name resolves to")),
                (Host::Name(name), Some(list)) if list.get_ref().is_empty() => self.err(at, list.span(), format!("test of `{name}`: resolve is empty; give at least one address")),
                (Host::Ip(_), Some(list)) => self.err(at, list.span(), "the url's host is an IP address, which is not resolved; remove `resolve`"),
                _ => {}
            }
        }
        let date = raw.date.as_ref().and_then(|d| self.date(at, d, "date"));
        let expect_reason = match &raw.expect_reason {
            Some(r) => match reason_by_name(r.get_ref()) {
                Some(reason) => Some(reason),
                None => {
                    let names: Vec<&str> = crate::policy::Reason::ALL
                        .iter()
                        .map(|r| r.as_str())
                        .collect();
                    self.err(
                        at,
                        r.span(),
                        format!(
                            "unknown reason `{}`; use one of {}",
                            r.get_ref(),
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        let (Some(target), Some(client)) = (target, client) else {
            return;
        };
        let spec = TestSpec {
            url: url.as_str().into(),
            client,
            method,
            resolve,
            date,
            expect: raw.expect,
            expect_rule: raw
                .expect_rule
                .as_ref()
                .map(|r| Arc::from(r.get_ref().as_str())),
            expect_reason,
            description: raw.description.as_deref().map(Box::from),
            target,
            origin: at.origin(t.span()),
        };
        self.tests.push((spec, raw.expect_rule.clone(), file_index));
    }

    /// Cross-file checks and the defaults filled into the rules.
    fn finish(&mut self, files: &[SourceFile], all_parsed: bool) -> Option<Model> {
        if !all_parsed {
            return None;
        }
        let policy = match self.policies.len() {
            1 => self.policies.pop(),
            0 => {
                let names: Vec<String> =
                    files.iter().map(|f| f.path.display().to_string()).collect();
                let path = files
                    .first()
                    .map_or_else(|| PathBuf::from("<policy>"), |f| f.path.clone());
                self.errors.push(Located {
                    path,
                    line: 0,
                    column: 0,
                    message: format!(
                        "no [policy] table in any policy file ({}); exactly one file must have one",
                        names.join(", ")
                    ),
                });
                None
            }
            _ => {
                let first = &self.policies[0].origin;
                for other in &self.policies[1..] {
                    self.errors.push(Located {
                        path: other.origin.path.clone(),
                        line: other.origin.line,
                        column: other.origin.column,
                        message: format!("a second [policy] table (the first is at {first}); exactly one file must have one"),
                    });
                }
                None
            }
        };

        let mut seen: HashMap<Arc<str>, Origin> = HashMap::new();
        for draft in &self.rules {
            let spec = &draft.spec;
            if let Some(first) = seen.get(&spec.id) {
                self.errors.push(Located {
                    path: spec.origin.path.clone(),
                    line: spec.origin.line,
                    column: spec.origin.column,
                    message: format!("duplicate rule id `{}` (first defined at {first}); rule ids must be unique", spec.id),
                });
            } else {
                seen.insert(spec.id.clone(), spec.origin.clone());
            }
        }
        let mut cidrs: HashMap<IpNet, Origin> = HashMap::new();
        for (net, origin) in &self.networks {
            if let Some(first) = cidrs.get(&net.cidr) {
                self.errors.push(Located {
                    path: origin.path.clone(),
                    line: origin.line,
                    column: origin.column,
                    message: format!(
                        "duplicate network `{}` (first defined at {first}); merge the two entries",
                        net.cidr
                    ),
                });
            } else {
                cidrs.insert(net.cidr, origin.clone());
            }
        }
        for (_, expect_rule, file_index) in &self.tests {
            if let Some(r) = expect_rule {
                if !seen.contains_key(r.get_ref().as_str()) {
                    let err = self.test_files[*file_index].error_at(
                        Some(r.span()),
                        format!("expect_rule `{}` names no rule of this policy", r.get_ref()),
                    );
                    self.errors.push(err);
                }
            }
        }

        let policy = policy?;
        let defaults = policy.defaults?;
        let rules = std::mem::take(&mut self.rules)
            .into_iter()
            .map(|d| {
                let mut spec = d.spec;
                spec.criteria = Criteria {
                    allowed_locations: d.allowed_locations.unwrap_or(defaults.allowed_locations),
                    allowed_operators: d.allowed_operators.unwrap_or(defaults.allowed_operators),
                    unknown_location: d.unknown_location.unwrap_or(defaults.unknown_location),
                    unknown_operator: d.unknown_operator.unwrap_or(defaults.unknown_operator),
                    no_asn: d.no_asn.or(defaults.no_asn),
                    anycast_location: d.anycast_location.unwrap_or(defaults.anycast_location),
                    required_qualifications: d.required_qualifications,
                    ip_selection: d.ip_selection.unwrap_or(defaults.ip_selection),
                    allowed_ports: d
                        .allowed_ports
                        .unwrap_or_else(|| defaults.allowed_ports.clone()),
                };
                spec
            })
            .collect();
        let mut networks: Vec<NetworkSpec> = std::mem::take(&mut self.networks)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        networks.sort_by_key(|n| n.cidr);
        Some(Model {
            name: policy.name,
            mode: policy.mode,
            description: policy.description,
            defaults,
            networks,
            rules,
            tests: std::mem::take(&mut self.tests)
                .into_iter()
                .map(|(t, _, _)| t)
                .collect(),
            sources: files.iter().map(|f| f.path.clone()).collect(),
        })
    }
}
