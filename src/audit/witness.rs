//! `douane audit witness`: pulls each replica's latest checkpoint from its admin listener,
//! checks its signature and that it extends the last one this witness saw (a consistency
//! proof from `/audit/consistency`), cosigns it (C2SP `tlog-cosignature`, `cosignature/v1`)
//! and keeps it. A fork (same size, other root, or a failed proof) or a shrinking log is
//! logged and raises `douane_witness_forks_total` / `douane_witness_shrinks_total`, written
//! after every round to `<state>/witness.prom` (node exporter textfile format).
//!
//! State: `<state>/witness.key` (0600), `<state>/witness.pub`, `<state>/counters.json` (the
//! counters of each replica, read back at start: a restarted witness, or one run `--once`
//! from a timer, keeps counting where it stopped), and per log
//! `<state>/logs/<origin>.checkpoint` (the last cosigned checkpoint) and `.history` (every one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::note::{Checkpoint, SignedNote, SigningKey, VerifierKey, ALG_COSIGNATURE_V1};
use super::proof::{check_consistency, decode_hashes};
use super::tlog::{read_verifier, write_atomic, TlogPaths};
use crate::cli::WitnessArgs;
use crate::commands::Exit;

/// What a pull of one replica found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First checkpoint of this log seen: cosigned.
    First { size: u64 },
    /// Extends the last one: cosigned.
    Extended { from: u64, to: u64 },
    /// The same checkpoint as last time.
    Unchanged { size: u64 },
    /// Same size, another root, or a failed consistency proof.
    Fork { detail: String },
    /// Fewer records than last time.
    Shrank { from: u64, to: u64 },
    /// The replica could not be asked, or answered something unusable.
    Failed { detail: String },
}

/// The witness's counters for one replica.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Counters {
    cosigned: u64,
    forks: u64,
    shrinks: u64,
    failures: u64,
    size: u64,
}

/// The witness: its key and where it keeps what it saw.
pub struct Witness {
    key: SigningKey,
    state: PathBuf,
    token: Option<String>,
}

impl Witness {
    pub fn open(state: &Path, name: &str, token: Option<String>) -> anyhow::Result<Witness> {
        std::fs::create_dir_all(state.join("logs"))?;
        let paths = TlogPaths {
            dir: state.to_path_buf(),
            tree: state.join("unused"),
            checkpoint: state.join("unused"),
            key: state.join("witness.key"),
            public: state.join("witness.pub"),
        };
        let key = match std::fs::read_to_string(&paths.key) {
            Ok(text) => SigningKey::parse(&text)?,
            Err(_) => {
                // Written with the log's key code (0600), as a cosignature key.
                let generated = SigningKey::generate(name, ALG_COSIGNATURE_V1)?;
                write_key(&paths.key, &generated)?;
                write_atomic(
                    &paths.public,
                    format!("{}\n", generated.verifier().encode()).as_bytes(),
                )?;
                generated
            }
        };
        Ok(Witness {
            key,
            state: state.to_path_buf(),
            token,
        })
    }

    pub fn verifier(&self) -> VerifierKey {
        self.key.verifier()
    }

    fn log_file(&self, origin: &str, ext: &str) -> PathBuf {
        let safe: String = origin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.state.join("logs").join(format!("{safe}.{ext}"))
    }

    /// Pulls, checks and cosigns one replica's checkpoint.
    pub async fn pull(&self, base: &str, log_key: &VerifierKey) -> Outcome {
        let failed = |detail: String| Outcome::Failed { detail };
        let text = match get(base, "/audit/checkpoint", self.token.as_deref()).await {
            Ok((200, t)) => t,
            Ok((status, t)) => {
                return failed(format!("{base}/audit/checkpoint: {status} {}", t.trim()))
            }
            Err(e) => return failed(format!("{base}/audit/checkpoint: {e}")),
        };
        let (cp, note) = match Checkpoint::open(&text, log_key) {
            Ok(x) => x,
            Err(e) => return failed(format!("{base}: checkpoint refused: {e}")),
        };
        let last = std::fs::read_to_string(self.log_file(&cp.origin, "checkpoint"))
            .ok()
            .and_then(|t| SignedNote::parse(&t).ok())
            .and_then(|n| Checkpoint::parse_body(&n.body).ok());
        let outcome = match &last {
            None => Outcome::First { size: cp.size },
            Some(old) if cp.size < old.size => {
                return Outcome::Shrank {
                    from: old.size,
                    to: cp.size,
                }
            }
            Some(old) if cp.size == old.size => {
                if cp.root != old.root {
                    return Outcome::Fork {
                        detail: format!(
                            "{base}: two checkpoints of {} records with different roots",
                            cp.size
                        ),
                    };
                }
                return Outcome::Unchanged { size: cp.size };
            }
            Some(old) => {
                let proof = if old.size == 0 {
                    Vec::new()
                } else {
                    let path = format!("/audit/consistency?from={}&to={}", old.size, cp.size);
                    let lines = match get(base, &path, self.token.as_deref()).await {
                        Ok((200, t)) => t,
                        Ok((status, t)) => {
                            return failed(format!("{base}{path}: {status} {}", t.trim()))
                        }
                        Err(e) => return failed(format!("{base}{path}: {e}")),
                    };
                    let lines: Vec<String> = lines.lines().map(str::to_owned).collect();
                    match decode_hashes(&lines) {
                        Ok(p) => p,
                        Err(e) => return failed(format!("{base}{path}: {e}")),
                    }
                };
                if let Err(e) = check_consistency(old, &cp, &proof) {
                    return Outcome::Fork {
                        detail: format!("{base}: {e}"),
                    };
                }
                Outcome::Extended {
                    from: old.size,
                    to: cp.size,
                }
            }
        };
        if let Err(e) = self.keep(&cp, &note) {
            return failed(format!("cannot keep the cosigned checkpoint: {e}"));
        }
        outcome
    }

    /// Cosigns and writes the checkpoint (latest and history).
    fn keep(&self, cp: &Checkpoint, note: &SignedNote) -> anyhow::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut text = note.encode();
        text.push_str(&self.key.cosign_line(&note.body, now));
        write_atomic(&self.log_file(&cp.origin, "checkpoint"), text.as_bytes())?;
        let mut history = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(&cp.origin, "history"))?;
        history.write_all(format!("{text}\n").as_bytes())?;
        Ok(())
    }

    /// The last cosigned checkpoint of a log, as kept.
    pub fn kept(&self, origin: &str) -> Option<String> {
        std::fs::read_to_string(self.log_file(origin, "checkpoint")).ok()
    }
}

fn write_key(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format!("{}\n", key.encode()).as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// A GET on a replica's admin listener (plain HTTP/1.1, bearer token).
async fn get(base: &str, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let uri: http::Uri = format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// admin URLs are supported".into());
    }
    let host = uri.host().ok_or("no host in URL")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, format!("{host}:{port}"));
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// A metric family: name, type, help, and its value for one replica.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Counters) -> u64,
);

fn render(replicas: &[String], counters: &[Counters]) -> String {
    let mut out = String::new();
    let families: [Family; 5] = [
        ("douane_witness_cosigned_total", "counter", "Checkpoints cosigned.", |c| c.cosigned),
        ("douane_witness_forks_total", "counter", "Forks seen: two checkpoints of one size with different roots, or a failed consistency proof.", |c| c.forks),
        ("douane_witness_shrinks_total", "counter", "Checkpoints smaller than the last one seen.", |c| c.shrinks),
        ("douane_witness_failures_total", "counter", "Pulls that failed (unreachable replica, bad signature, bad proof answer).", |c| c.failures),
        ("douane_witness_tree_size", "gauge", "Size of the last checkpoint cosigned.", |c| c.size),
    ];
    for (name, kind, help, get) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (r, c) in replicas.iter().zip(counters) {
            out.push_str(&format!(
                "{name}{{replica=\"{}\"}} {}\n",
                r.replace(['"', '\\'], "_"),
                get(c)
            ));
        }
    }
    out
}

/// The file the counters survive a restart in, under the state directory.
const COUNTERS_FILE: &str = "counters.json";

/// The saved counters of each replica (by its base URL), zero for one not seen before or
/// when the file is missing; an unreadable file is said, and counting starts again.
fn load_counters(path: &Path, replicas: &[String]) -> Vec<Counters> {
    let saved: std::collections::BTreeMap<String, Counters> = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            eprintln!(
                "douane witness: {} is unreadable ({e}): counters start at 0",
                path.display()
            );
            Default::default()
        }),
        Err(_) => Default::default(),
    };
    replicas
        .iter()
        .map(|r| saved.get(r).cloned().unwrap_or_default())
        .collect()
}

fn save_counters(path: &Path, replicas: &[String], counters: &[Counters]) -> anyhow::Result<()> {
    // Replicas no longer pulled keep their counters in the file.
    let mut all: std::collections::BTreeMap<String, Counters> = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for (r, c) in replicas.iter().zip(counters) {
        all.insert(r.clone(), c.clone());
    }
    write_atomic(path, &serde_json::to_vec_pretty(&all)?)?;
    Ok(())
}

/// Runs the witness (the `douane audit witness` command).
pub fn run(args: &WitnessArgs) -> anyhow::Result<Exit> {
    if args.replicas.len() != args.log_keys.len() {
        anyhow::bail!(
            "give one --log-key per --replica ({} replicas, {} keys)",
            args.replicas.len(),
            args.log_keys.len()
        );
    }
    let keys: Vec<VerifierKey> = args
        .log_keys
        .iter()
        .map(|k| read_verifier(k).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    let witness = Witness::open(&args.state, &args.name, args.token.clone())?;
    eprintln!("douane witness: key {}", witness.verifier().encode());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let saved = args.state.join(COUNTERS_FILE);
        let mut counters = load_counters(&saved, &args.replicas);
        loop {
            let mut alarm = false;
            for (i, (base, key)) in args.replicas.iter().zip(&keys).enumerate() {
                let outcome = witness.pull(base, key).await;
                let c = &mut counters[i];
                match &outcome {
                    Outcome::First { size } | Outcome::Extended { to: size, .. } => {
                        c.cosigned += 1;
                        c.size = *size;
                        eprintln!("douane witness: {base}: cosigned checkpoint of {size} records ({outcome:?})");
                    }
                    Outcome::Unchanged { .. } => {}
                    Outcome::Fork { detail } => {
                        c.forks += 1;
                        alarm = true;
                        eprintln!("douane witness: FORK: {detail}");
                        tracing::error!(replica = %base, %detail, "audit log fork");
                    }
                    Outcome::Shrank { from, to } => {
                        c.shrinks += 1;
                        alarm = true;
                        eprintln!("douane witness: SHRANK: {base}: the log had {from} records, now {to}");
                        tracing::error!(replica = %base, from, to, "audit log shrank");
                    }
                    Outcome::Failed { detail } => {
                        c.failures += 1;
                        eprintln!("douane witness: failed: {detail}");
                    }
                }
            }
            if let Err(e) = save_counters(&saved, &args.replicas, &counters) {
                eprintln!("douane witness: cannot save {}: {e}", saved.display());
            }
            let _ = write_atomic(
                &args.state.join("witness.prom"),
                render(&args.replicas, &counters).as_bytes(),
            );
            if args.once {
                return Ok(if alarm { Exit::Failed } else { Exit::Success });
            }
            tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
        }
    })
}
