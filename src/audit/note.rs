//! Signed notes (C2SP `signed-note`), checkpoints (C2SP `tlog-checkpoint`) and cosignatures
//! (C2SP `tlog-cosignature`, `cosignature/v1`), all Ed25519 (ring).
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root>\n      the checkpoint body (the signed text)
//! \n
//! — <key name> <base64(key id[4] ‖ signature[64])>\n            the log's signature
//! — <witness name> <base64(key id[4] ‖ time[8] ‖ signature[64])>\n  a cosignature
//! ```
//!
//! Key ID: the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ type ‖ public key)`, type 0x01 for a
//! note signature, 0x04 for a cosignature. Keys are written as the Go `note` package does:
//! `PRIVATE+KEY+<name>+<id hex>+<base64(type ‖ seed)>` and `<name>+<id hex>+<base64(type ‖
//! public key)>` (the verifier key).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// Signature type of an Ed25519 note signature.
pub const ALG_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 `cosignature/v1`.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// What is wrong with a key, a note or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(String),
    #[error("malformed note: {0}")]
    Note(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    #[error("no signature by key {name}+{id} on the note (signed by: {found})")]
    NotSigned {
        name: String,
        id: String,
        found: String,
    },
    #[error(
        "the signature by {name} does not verify: the note was altered or signed by another key"
    )]
    BadSignature { name: String },
    #[error("cannot draw random bytes for a key")]
    Random,
}

fn key_id(name: &str, alg: u8, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(|c| c.is_whitespace()) {
        return Err(NoteError::Key(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// A private Ed25519 key with its name.
pub struct SigningKey {
    name: String,
    alg: u8,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
    id: [u8; 4],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}+{})", self.name, hex::encode(self.id))
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(name: &str, alg: u8) -> Result<SigningKey, NoteError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| NoteError::Random)?;
        SigningKey::from_seed(name, alg, seed)
    }

    pub fn from_seed(name: &str, alg: u8, seed: [u8; 32]) -> Result<SigningKey, NoteError> {
        check_name(name)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| NoteError::Key(e.to_string()))?;
        let id = key_id(name, alg, pair.public_key().as_ref());
        Ok(SigningKey {
            name: name.to_owned(),
            alg,
            seed,
            pair,
            id,
        })
    }

    /// Reads `PRIVATE+KEY+<name>+<id>+<base64(type ‖ seed)>`.
    pub fn parse(text: &str) -> Result<SigningKey, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::Key("a private key starts with PRIVATE+KEY+".into()))?;
        let (name, id, raw) = split_key(rest)?;
        let (&alg, seed) = raw
            .split_first()
            .ok_or_else(|| NoteError::Key("empty key".into()))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::Key("an Ed25519 seed is 32 bytes".into()))?;
        let key = SigningKey::from_seed(name, alg, seed)?;
        if key.id != id {
            return Err(NoteError::Key("the key ID does not match the key".into()));
        }
        Ok(key)
    }

    /// `PRIVATE+KEY+<name>+<id>+<base64(type ‖ seed)>`
    pub fn encode(&self) -> String {
        let mut raw = vec![self.alg];
        raw.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(raw)
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> VerifierKey {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.pair.public_key().as_ref());
        VerifierKey {
            name: self.name.clone(),
            alg: self.alg,
            id: self.id,
            public,
        }
    }

    /// The signature line `— <name> <base64(id ‖ sig)>\n` over `body`.
    pub fn sign_line(&self, body: &str) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(self.pair.sign(body.as_bytes()).as_ref());
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }

    /// A whole signed note: `body`, an empty line, the signature.
    pub fn sign_note(&self, body: &str) -> String {
        format!("{body}\n{}", self.sign_line(body))
    }

    /// A `cosignature/v1` line over a checkpoint body at `time` (seconds since the epoch).
    pub fn cosign_line(&self, body: &str, time: u64) -> String {
        let msg = cosigned_message(body, time);
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(self.pair.sign(msg.as_bytes()).as_ref());
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

fn split_key(s: &str) -> Result<(&str, [u8; 4], Vec<u8>), NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("expected <name>+<id>+<base64>".into()));
    };
    check_name(name)?;
    let id: [u8; 4] = hex::decode(id)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| NoteError::Key("the key ID is 8 hex digits".into()))?;
    let raw = B64
        .decode(b64)
        .map_err(|e| NoteError::Key(format!("base64: {e}")))?;
    Ok((name, id, raw))
}

/// A public key that checks signatures: `<name>+<id>+<base64(type ‖ public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub alg: u8,
    pub id: [u8; 4],
    pub public: [u8; 32],
}

impl VerifierKey {
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let (name, id, raw) = split_key(text.trim())?;
        let (&alg, public) = raw
            .split_first()
            .ok_or_else(|| NoteError::Key("empty key".into()))?;
        if alg != ALG_ED25519 && alg != ALG_COSIGNATURE_V1 {
            return Err(NoteError::Key(format!("unknown signature type {alg:#04x}")));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::Key("an Ed25519 public key is 32 bytes".into()))?;
        if key_id(name, alg, &public) != id {
            return Err(NoteError::Key("the key ID does not match the key".into()));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            alg,
            id,
            public,
        })
    }

    pub fn encode(&self) -> String {
        let mut raw = vec![self.alg];
        raw.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(raw))
    }

    fn check(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public)
            .verify(msg, sig)
            .is_ok()
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    /// What follows the key ID.
    pub payload: Vec<u8>,
}

/// A note split into its signed body and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn parse(text: &str) -> Result<SignedNote, NoteError> {
        let bad = |s: &str| Err(NoteError::Note(s.into()));
        let Some(at) = text.rfind("\n\n") else {
            return bad("no empty line before the signatures");
        };
        let body = &text[..at + 1];
        let sigs = &text[at + 2..];
        if !sigs.ends_with('\n') {
            return bad("the signatures do not end with a newline");
        }
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return bad("a signature line starts with \"— \"");
            };
            let Some((name, b64)) = rest.split_once(' ') else {
                return bad("a signature line is \"— <name> <base64>\"");
            };
            let raw = match B64.decode(b64) {
                Ok(r) if r.len() > 4 => r,
                _ => return bad("a signature is base64 of at least 5 bytes"),
            };
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: [raw[0], raw[1], raw[2], raw[3]],
                payload: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return bad("no signature");
        }
        Ok(SignedNote {
            body: body.to_owned(),
            signatures,
        })
    }

    fn find(&self, key: &VerifierKey) -> Result<&NoteSignature, NoteError> {
        self.signatures
            .iter()
            .find(|s| s.name == key.name && s.id == key.id)
            .ok_or_else(|| NoteError::NotSigned {
                name: key.name.clone(),
                id: hex::encode(key.id),
                found: self
                    .signatures
                    .iter()
                    .map(|s| format!("{}+{}", s.name, hex::encode(s.id)))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Checks the note signature by `key` (type 0x01).
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        let sig = self.find(key)?;
        if key.alg != ALG_ED25519 || !key.check(self.body.as_bytes(), &sig.payload) {
            return Err(NoteError::BadSignature {
                name: key.name.clone(),
            });
        }
        Ok(())
    }

    /// Checks a `cosignature/v1` by `key` (type 0x04); returns its time.
    pub fn verify_cosignature(&self, key: &VerifierKey) -> Result<u64, NoteError> {
        let sig = self.find(key)?;
        let bad = || NoteError::BadSignature {
            name: key.name.clone(),
        };
        if key.alg != ALG_COSIGNATURE_V1 || sig.payload.len() != 72 {
            return Err(bad());
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&sig.payload[..8]);
        let time = u64::from_be_bytes(t);
        let msg = cosigned_message(&self.body, time);
        if !key.check(msg.as_bytes(), &sig.payload[8..]) {
            return Err(bad());
        }
        Ok(time)
    }

    /// The note again: body, empty line, signatures.
    pub fn encode(&self) -> String {
        let mut out = format!("{}\n", self.body);
        for s in &self.signatures {
            let mut raw = s.id.to_vec();
            raw.extend_from_slice(&s.payload);
            out.push_str(&format!("\u{2014} {} {}\n", s.name, B64.encode(raw)));
        }
        out
    }
}

/// A tree head: the log's origin, its size, its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// `<origin>\n<size>\n<base64 root>\n`
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let bad = |s: String| Err(NoteError::Checkpoint(s));
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return bad("expected origin, tree size and root hash lines".into());
        };
        if origin.is_empty() {
            return bad("empty origin".into());
        }
        let Ok(size) = size.parse::<u64>() else {
            return bad(format!("tree size {size:?} is not a number"));
        };
        let root: Hash = match B64.decode(root).ok().and_then(|r| r.try_into().ok()) {
            Some(r) => r,
            None => return bad("the root hash is base64 of 32 bytes".into()),
        };
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Reads a signed checkpoint and checks its signature by `key`.
    pub fn open(text: &str, key: &VerifierKey) -> Result<(Checkpoint, SignedNote), NoteError> {
        let note = SignedNote::parse(text)?;
        note.verify(key)?;
        let cp = Checkpoint::parse_body(&note.body)?;
        Ok((cp, note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_seed("example.org/log", ALG_ED25519, [7; 32]).expect("key")
    }

    #[test]
    fn keys_round_trip() {
        let k = key();
        let back = SigningKey::parse(&k.encode()).expect("private");
        assert_eq!(back.verifier(), k.verifier());
        let v = VerifierKey::parse(&k.verifier().encode()).expect("public");
        assert_eq!(v, k.verifier());
        assert!(v.encode().starts_with("example.org/log+"));
        let enc = k.verifier().encode();
        let b64 = enc.rsplit('+').next().expect("b64");
        let wrong_id = format!("example.org/log+00000000+{b64}");
        assert!(VerifierKey::parse(&wrong_id).is_err());
        assert!(SigningKey::from_seed("bad name", ALG_ED25519, [0; 32]).is_err());
    }

    #[test]
    fn the_go_note_package_vector() {
        // golang.org/x/mod/sumdb/note: the documented example key and its signed note.
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let msg = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let v = VerifierKey::parse(vkey).expect("vkey");
        let note = SignedNote::parse(msg).expect("note");
        note.verify(&v).expect("verifies");
        let mut altered = msg.replace("answer", "ANSWER");
        let n2 = SignedNote::parse(&altered).expect("note");
        assert!(matches!(n2.verify(&v), Err(NoteError::BadSignature { .. })));
        altered.clear();
        assert_eq!(note.encode(), msg);
    }

    #[test]
    fn checkpoints_sign_open_and_refuse_tampering() {
        let k = key();
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 42,
            root: [9; 32],
        };
        let text = k.sign_note(&cp.body());
        let (back, _) = Checkpoint::open(&text, &k.verifier()).expect("opens");
        assert_eq!(back, cp);
        let forged = text.replacen("42", "41", 1);
        assert!(Checkpoint::open(&forged, &k.verifier()).is_err());
        let other = SigningKey::from_seed("example.org/log", ALG_ED25519, [8; 32]).expect("k");
        let err = Checkpoint::open(&text, &other.verifier()).expect_err("other key");
        assert!(matches!(err, NoteError::NotSigned { .. }), "{err}");
    }

    #[test]
    fn cosignatures() {
        let k = key();
        let w = SigningKey::from_seed("witness.example", ALG_COSIGNATURE_V1, [3; 32]).expect("w");
        let cp = Checkpoint {
            origin: "example.org/log".into(),
            size: 1,
            root: [1; 32],
        };
        let mut text = k.sign_note(&cp.body());
        text.push_str(&w.cosign_line(&cp.body(), 1_700_000_000));
        let note = SignedNote::parse(&text).expect("note");
        note.verify(&k.verifier()).expect("log signature");
        assert_eq!(
            note.verify_cosignature(&w.verifier()).expect("cosig"),
            1_700_000_000
        );
        assert!(note.verify_cosignature(&k.verifier()).is_err());
    }
}
