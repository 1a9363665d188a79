//! Every kind of policy error, each at its file, line and column; merging; versions.

use super::*;

fn assert_has(errors: &[String], expected_prefix: &str, fragment: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(expected_prefix) && e.contains(fragment)),
        "no error `{expected_prefix}…{fragment}…` in:\n{}",
        errors.join("\n")
    );
}

#[test]
fn unknown_key_everywhere() {
    let errs = errors(&[("p.toml", &format!("{BASE}colour = 1\n"))]);
    assert_eq!(
        errs.len(),
        1,
        "a file that does not parse hides no [policy] error: {errs:?}"
    );
    assert_has(&errs, "p.toml:6:1:", "unknown field `colour`");
    let net = "[[network]]\ncidr = \"10.0.0.0/8\"\nlocation = \"FR\"\nsize = 3\n";
    assert_has(
        &errors(&[("p.toml", BASE), ("n.toml", net)]),
        "n.toml:4:1:",
        "unknown field `size`",
    );
    let errs = errors(&[
        ("p.toml", BASE),
        ("q.toml", "[[rule]]\nid = \"a\"\nhost = [\"x.example\"]\n"),
    ]);
    assert_has(&errs, "q.toml:3:1:", "unknown field `host`");
    let errs = errors(&[("p.toml", BASE), ("t.toml", "[[test]]\nurl = \"https://x.example/\"\nexpect = \"allow\"\nresolve = [\"192.0.2.1\"]\nexpected_rule = \"a\"\n")]);
    assert_has(&errs, "t.toml:5:1:", "unknown field `expected_rule`");
    let errs = errors(&[("p.toml", &format!("{BASE}[rules]\n"))]);
    assert_has(&errs, "p.toml:6:", "unknown field `rules`");
    let errs = errors(&[("p.toml", "[policy]\nname = \"m\"\n")]);
    assert_has(&errs, "p.toml:1:1:", "missing field `allowed_locations`");
}

#[test]
fn bad_enum_values_are_located() {
    let text = format!("{BASE}mode = \"audit\"\n");
    assert_has(
        &errors(&[("p.toml", &text)]),
        "p.toml:6:8:",
        "unknown variant `audit`",
    );
    let text = format!("{BASE}\n[[rule]]\nid = \"r\"\naction = \"deny\"\n");
    assert_has(
        &errors(&[("p.toml", &text)]),
        "p.toml:9:10:",
        "unknown variant `deny`",
    );
}

#[test]
fn syntax_error_is_located() {
    let errs = errors(&[("p.toml", "[policy\nname = 1\n")]);
    assert!(errs[0].starts_with("p.toml:1:"), "{errs:?}");
}

#[test]
fn every_syntax_error_of_every_file_at_once() {
    let errs = errors(&[
        ("p.toml", "[policy\nname = \"m\"\nx = = 2\n"),
        ("q.toml", "[[rule]]\nid = = \"a\"\n"),
    ]);
    assert_has(&errs, "p.toml:1:", "");
    assert_has(&errs, "p.toml:3:", "");
    assert_has(&errs, "q.toml:2:", "");
    assert!(errs.len() >= 3, "{errs:?}");
}

#[test]
fn country_codes() {
    let text = r#"[policy]
name = "m"
allowed_locations = ["EU", "XX", "eu"]
allowed_operators = ["FRA"]

[[network]]
cidr = "10.0.0.0/8"
location = "EEA"
"#;
    let errs = errors(&[("p.toml", text)]);
    assert_has(&errs, "p.toml:3:28:", "`XX` is not an assigned");
    // `eu` is `EU`, as `fr` is `FR`.
    assert_has(&errs, "p.toml:4:22:", "`FRA` is not an ISO 3166-1");
    assert_has(&errs, "p.toml:8:12:", "single country, not a group");
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn cidrs() {
    let text = format!(
        r#"{BASE}
[[network]]
cidr = "10.0.0.0/33"

[[network]]
cidr = "10.1.2.3/8"

[[rule]]
id = "r"
clients = ["10.20.0.0/16", "banana"]
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(&errs, "p.toml:8:8:", "`10.0.0.0/33` is not a CIDR");
    assert_has(&errs, "p.toml:11:8:", "did you mean `10.0.0.0/8`");
    assert_has(&errs, "p.toml:15:28:", "`banana` is not a CIDR");
}

#[test]
fn duplicate_rule_ids_across_files() {
    let errs = errors(&[
        ("a.toml", &format!("{BASE}\n[[rule]]\nid = \"sante\"\n")),
        ("b.toml", "# other\n[[rule]]\nid = \"sante\"\n"),
    ]);
    assert_eq!(
        errs,
        ["b.toml:3:6: duplicate rule id `sante` (first defined at a.toml:8:6); rule ids must be unique"]
    );
}

#[test]
fn duplicate_networks() {
    let errs = errors(&[(
        "p.toml",
        &format!(
            "{BASE}\n[[network]]\ncidr = \"10.0.0.0/8\"\n[[network]]\ncidr = \"10.0.0.0/8\"\n"
        ),
    )]);
    assert_has(&errs, "p.toml:10:8:", "first defined at p.toml:8:8");
}

#[test]
fn exemption_needs_justification_and_expires() {
    let text = format!(
        r#"{BASE}
[[rule]]
id = "ex"
hosts = ["*.outlook.com"]
action = "allow"

[[rule]]
id = "ex2"
action = "allow"
justification = "  "
expires = 2027-06-30T10:00:00
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(
        &errs,
        "p.toml:8:6:",
        "exemption `ex` (action = \"allow\") needs a non-empty `justification`",
    );
    assert_has(
        &errs,
        "p.toml:8:6:",
        "exemption `ex` (action = \"allow\") needs `expires",
    );
    assert_has(&errs, "p.toml:15:17:", "needs a non-empty `justification`");
    assert_has(
        &errs,
        "p.toml:16:11:",
        "`expires` must be a date without time",
    );
    assert_eq!(errs.len(), 4, "{errs:?}");
}

#[test]
fn settings_an_action_ignores_are_refused() {
    let text = format!(
        r#"{BASE}
[[rule]]
id = "b"
action = "block"
allowed_locations = ["FR"]
expires = 2027-01-01

[[rule]]
id = "e"
expires = 2027-01-01
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(
        &errs,
        "p.toml:10:21:",
        "`allowed_locations` has no effect on a rule with action = \"block\"",
    );
    assert_has(
        &errs,
        "p.toml:11:11:",
        "`expires` applies only to exemptions",
    );
    assert_has(
        &errs,
        "p.toml:15:11:",
        "`expires` applies only to exemptions",
    );
}

#[test]
fn host_patterns() {
    let text = format!(
        r#"{BASE}
[[rule]]
id = "r"
hosts = ["a*.example", "x.*.example", "*", "*.", "crm.example:443", "bad..name", "*.*.example", "10.1"]
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(
        &errs,
        "p.toml:9:10:",
        "`*` is allowed only as the whole first label",
    );
    assert_has(
        &errs,
        "p.toml:9:24:",
        "`*` is allowed only as the whole first label",
    );
    assert_has(
        &errs,
        "p.toml:9:39:",
        "`*` is allowed only as the whole first label",
    );
    assert_has(
        &errs,
        "p.toml:9:44:",
        "`*` is allowed only as the whole first label",
    );
    assert_has(&errs, "p.toml:9:50:", "ports and paths go in");
    assert_has(&errs, "p.toml:9:69:", "not a valid host name");
    assert_has(
        &errs,
        "p.toml:9:82:",
        "`*` is allowed only as the whole first label",
    );
    assert_has(&errs, "p.toml:9:97:", "short or hex IPv4 form");
    assert_eq!(errs.len(), 8, "{errs:?}");
}

#[test]
fn empty_lists() {
    let text = r#"[policy]
name = "m"
allowed_locations = []
allowed_operators = ["FR"]
allowed_ports = []

[[rule]]
id = "r"
hosts = []
"#;
    let errs = errors(&[("p.toml", text)]);
    assert_has(
        &errs,
        "p.toml:3:21:",
        "`allowed_locations` is empty, which would allow nothing",
    );
    assert_has(&errs, "p.toml:5:17:", "`allowed_ports` is empty");
    assert_has(&errs, "p.toml:9:9:", "`hosts` is empty");
}

#[test]
fn methods_paths_ports() {
    let text = format!(
        r#"{BASE}
[[rule]]
id = "r"
methods = ["get", "FETCH", "CONNECT"]
paths = ["/api", "api/v2"]
ports = [443, 70000]
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(&errs, "p.toml:9:19:", "unknown HTTP method `FETCH`");
    assert_has(&errs, "p.toml:9:28:", "a CONNECT tunnel shows no method");
    assert_has(&errs, "p.toml:10:18:", "path `api/v2` must start with `/`");
    assert_has(&errs, "p.toml:11:15:", "port 70000 is out of range");
    assert_eq!(errs.len(), 4, "{errs:?}");
}

#[test]
fn rule_ids_are_labels() {
    let errs = errors(&[(
        "p.toml",
        &format!("{BASE}\n[[rule]]\nid = \"santé publique\"\n"),
    )]);
    assert_has(&errs, "p.toml:8:6:", "rule id `santé publique` must be");
}

#[test]
fn exactly_one_policy_table() {
    let errs = errors(&[("a.toml", "[[rule]]\nid = \"r\"\n"), ("b.toml", "")]);
    assert_eq!(
        errs,
        ["a.toml: no [policy] table in any policy file (a.toml, b.toml); exactly one file must have one"]
    );
    let errs = errors(&[("a.toml", BASE), ("b.toml", &format!("\n{BASE}"))]);
    assert_eq!(
        errs,
        ["b.toml:3:1: a second [policy] table (the first is at a.toml:2:1); exactly one file must have one"]
    );
}

#[test]
fn tests_are_validated() {
    let text = format!(
        r#"{BASE}
[[rule]]
id = "r"

[[test]]
url = "https://crm.example/"
expect = "block"
expect_rule = "nope"
expect_reason = "because"

[[test]]
url = "gopher://crm.example/"
client = "me"
expect = "allow"

[[test]]
url = "https://192.0.2.1/"
resolve = ["192.0.2.1"]
method = "BREW"
expect = "allow"
"#
    );
    let errs = errors(&[("p.toml", &text)]);
    assert_has(&errs, "p.toml:11:7:", "needs `resolve");
    assert_has(&errs, "p.toml:13:15:", "expect_rule `nope` names no rule");
    assert_has(&errs, "p.toml:14:17:", "unknown reason `because`");
    assert_has(
        &errs,
        "p.toml:17:7:",
        "scheme `gopher` is not supported (use http or https)",
    );
    assert_has(
        &errs,
        "p.toml:18:10:",
        "test client `me` is not an IP address",
    );
    assert_has(&errs, "p.toml:24:10:", "unknown HTTP method `BREW`");
    assert_has(&errs, "p.toml:23:11:", "remove `resolve`");
    assert_eq!(errs.len(), 7, "{errs:?}");
}

#[test]
fn every_error_of_every_file_at_once() {
    let errs = errors(&[
        (
            "a.toml",
            "[policy]\nname = \"m\"\nallowed_locations = [\"ZZ\"]\nallowed_operators = [\"FR\"]\n",
        ),
        ("b.toml", "[[rule]]\nid = \"r\"\nclients = [\"x\"]\n"),
        ("c.toml", "[[rule]\n"),
        (
            "d.toml",
            "[[network]]\ncidr = \"fd00::/8\"\nlocation = \"QQ\"\n",
        ),
    ]);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert_has(&errs, "c.toml:1:", "");
    assert_has(&errs, "a.toml:3:22:", "`ZZ`");
    assert_has(&errs, "b.toml:3:12:", "`x` is not a CIDR");
    assert_has(&errs, "d.toml:3:12:", "`QQ`");
}

#[test]
fn defaults_and_inheritance() {
    let p = policy(&format!(
        r#"{BASE}
[[rule]]
id = "sante"
hosts = ["*.sante.example"]
allowed_locations = ["FR"]
unknown_location = "allow"
"#
    ));
    assert_eq!(p.defaults.allowed_ports, [80, 443]);
    assert_eq!(
        p.defaults.unknown_operator,
        crate::policy::UnknownOperator::Location
    );
    let rule = &p.rules[0].criteria;
    assert_eq!(rule.allowed_locations.len(), 1);
    assert_eq!(
        rule.allowed_operators, p.defaults.allowed_operators,
        "inherited"
    );
    assert_eq!(rule.allowed_ports, [80, 443], "inherited");
    assert_eq!(rule.unknown_location, crate::policy::UnknownLocation::Allow);
    assert_eq!(rule.ip_selection, p.defaults.ip_selection, "inherited");
    assert!(
        p.defaults.allowed_locations.contains(c("NO")),
        "EEA expanded"
    );
}

#[test]
fn load_dir_orders_by_name_and_skips_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("10-policy.toml", BASE);
    write("20-rules.toml", "[[rule]]\nid = \"second\"\n");
    write("02-rules.toml", "[[rule]]\nid = \"first\"\n");
    write("operators.toml", "[[operator]]\nname = \"x\"\n");
    write("extra.toml", "not toml at all [");
    write(".#editor.toml", "garbage");
    write("notes.txt", "garbage");
    let p = Policy::load_dir(dir.path(), &["extra.toml"]).unwrap();
    let ids: Vec<&str> = p.rules.iter().map(|r| &*r.id).collect();
    assert_eq!(ids, ["first", "second"]);
    assert_eq!(p.sources.len(), 3);
    let err = Policy::load_dir(dir.path(), &[]).unwrap_err();
    assert!(err.to_string().contains("extra.toml:1:"), "{err}");
}

const SPLIT_A: &str = r#"
# the whole policy in one file
[policy]
name = "mairie"
allowed_locations = ["EU", "EEA"]
allowed_operators = ["EU"]
allowed_ports = [443, 80]

[[network]]
cidr = "10.0.0.0/8"
location = "FR"
operator = "FR"
label = "dc"

[[network]]
cidr = "192.168.0.0/16"
label = "lan"

[[rule]]
id = "sante"
hosts = ["*.sante.example", "dossier.example"]
allowed_locations = ["FR"]

[[rule]]
id = "ex"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché en cours"
expires = 2027-06-30
"#;

#[test]
fn version_ignores_form_and_files() {
    let one = policy(SPLIT_A);
    // Reordered keys, other comments and spacing, set-like lists reordered, split in two
    // files, networks swapped, the EEA written as EU + its three members, ports repeated.
    let policy_part = r#"[policy]
allowed_ports = [80, 443, 443]
allowed_operators = [ "EU" ]   # jurisdictions
name = "mairie"
allowed_locations = ["EU", "IS", "LI", "NO"]
[[network]]
label = "lan"
cidr = "192.168.0.0/16"
"#;
    let rules_part = r#"[[network]]
operator = "fr"
location = "FR"
label = "dc"
cidr = "10.0.0.0/8"
[[rule]]
allowed_locations = ["FR"]
hosts = ["DOSSIER.example.", "*.sante.example"]
id = "sante"
[[rule]]
expires = 2027-06-30
justification = "marché en cours"
action = "allow"
id = "ex"
hosts = ["*.outlook.com"]
"#;
    let two = load(&[("a.toml", policy_part), ("b.toml", rules_part)]).unwrap();
    assert_eq!(one.version.len(), 64);
    assert_eq!(one.version, two.version);
}

#[test]
fn version_follows_every_change_of_meaning() {
    let base = policy(SPLIT_A).version;
    let changes = [
        (
            "allowed_operators = [\"EU\"]",
            "allowed_operators = [\"EU\", \"CH\"]",
        ),
        ("name = \"mairie\"", "name = \"mairie2\""),
        ("expires = 2027-06-30", "expires = 2027-07-01"),
        ("hosts = [\"*.outlook.com\"]", "hosts = [\"outlook.com\"]"),
        ("label = \"lan\"", "label = \"lan2\""),
        (
            "justification = \"marché en cours\"",
            "justification = \"marché\"",
        ),
        ("allowed_ports = [443, 80]", "allowed_ports = [443]"),
        ("[policy]", "[policy]\nmode = \"monitor\""),
        ("[policy]", "[policy]\nunknown_location = \"allow\""),
    ];
    for (from, to) in changes {
        let changed = policy(&SPLIT_A.replacen(from, to, 1)).version;
        assert_ne!(base, changed, "{from} → {to} must change the version");
    }
    // Rule order is meaning: first match wins.
    let swapped = SPLIT_A.replacen("id = \"sante\"", "id = \"TMP\"", 1);
    let (head, tail) = swapped.split_at(swapped.find("[[rule]]").unwrap());
    let second = tail.rfind("[[rule]]").unwrap();
    let reordered = format!("{head}{}\n{}", &tail[second..], &tail[..second]);
    let reordered = reordered.replacen("id = \"TMP\"", "id = \"sante\"", 1);
    assert_ne!(base, policy(&reordered).version);
}
