//! The manual pages and shell completions are generated from the clap definitions: the pages
//! shipped in `deploy/man/` must be exactly what the current command line generates
//! (`cargo run --example man` rewrites them), and `douane completions SHELL` must print a
//! script that its shell accepts and that knows every subcommand.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

fn douane(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(args)
        .output()
        .expect("run douane");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn shipped_man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/man");
    let generated = douane::commands::completions::man_pages().unwrap();
    let shipped: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/man exists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = generated.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        shipped, expected,
        "deploy/man/ has other pages than the CLI generates: run `cargo run --example man`"
    );
    for (name, page) in &generated {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert!(
            on_disk == *page,
            "deploy/man/{name} is stale: run `cargo run --example man`"
        );
    }
    // Every subcommand of the CLI has its page, and douane(1) names it.
    let top = String::from_utf8_lossy(&generated[0].1).into_owned();
    assert_eq!(generated[0].0, "douane.1");
    for sub in douane::cli::Cli::command().get_subcommands() {
        let name = sub.get_name();
        assert!(
            expected.contains(&format!("douane-{name}.1")),
            "no page for {name}"
        );
        assert!(
            top.contains(&format!("douane\\-{name}(1)")),
            "douane.1 does not list {name}"
        );
    }
}

#[test]
fn completions_man_prints_the_main_page() {
    let (ok, page) = douane(&["completions", "man"]);
    assert!(ok);
    assert!(page.contains(".TH douane 1"), "{page}");
    assert!(page.contains("SUBCOMMANDS"), "{page}");
}

#[test]
fn bash_completion_parses_and_knows_every_subcommand() {
    let (ok, script) = douane(&["completions", "bash"]);
    assert!(ok);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("douane.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n refuses the script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Sourced, it completes `douane ge` to `geodb` and `douane audit v` to `verify`.
    let complete = |words: &str| -> String {
        let probe = format!(
            "source {file}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); \
             COMP_LINE=\"{words}\"; COMP_POINT=${{#COMP_LINE}}; \
             _douane douane \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file = file.display()
        );
        let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(complete("douane ge").lines().any(|l| l == "geodb"));
    assert!(complete("douane audit v").lines().any(|l| l == "verify"));
    for sub in douane::cli::Cli::command().get_subcommands() {
        assert!(script.contains(sub.get_name()), "{}", sub.get_name());
    }
}

#[test]
fn every_shell_gets_a_script() {
    for (shell, marker) in [
        ("zsh", "#compdef douane"),
        ("fish", "complete -c douane"),
        ("elvish", "edit:completion:arg-completer[douane]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (ok, script) = douane(&["completions", shell]);
        assert!(ok, "{shell}");
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("geodb"), "{shell} does not know geodb");
    }
}
