//! The keyed link, acquirer side (issue 12; docs/host.md "Keys and MAC", docs/keys.md):
//! terminal master key provisioning (0800, DE 70 = 170 then 171), fresh working keys at every
//! sign-on, the MAC of every message in both directions, and the PIN block (DE 52) read under
//! the connection's PIN key. Both wire formats: `ascii87`, and `bcd87` with a TPDU (a body whose
//! first byte is a TPDU id `60`).
//!
//! Working keys belong to the connection that signed on: a terminal's second connection (its
//! gate uploader, a retry) signs on for its own keys and does not disturb the first.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use host_contract::link::{self as keyed, SessionKeys, WorkingKeys, KEYS_REQUEST};
use host_contract::{network, response_mti, ResponseCode as Rc};
use iso8583::{ascii87, field, Header, Message, Mti, Spec, Tpdu};
use shanfu_keys::p256::ecdsa::{SigningKey, VerifyingKey};
use shanfu_keys::provision::{self, AcquirerProvisioning, TerminalConfirm, TerminalHello};
use shanfu_keys::rand_core::OsRng;
use shanfu_keys::wrap::{self, KeyUsage, WrappedAesKey};
use shanfu_keys::{AesKey, TdesKey};

use crate::{Acquirer, AcquirerError};

/// The simulator's long-term P-256 signing key (its provisioning identity). **TEST ONLY**: a
/// published key; a real acquirer generates its own in an HSM. Its public half is pinned in the
/// terminal's shipped `config/host.toml` (`acquirer_key`).
pub const TEST_SIGNING_KEY: &str = "5348414E46552054455354204F4E4C59206163717569726572207369676E2031";

/// Whether the acquirer accepts messages without a MAC (issue 12 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacMode {
    /// Every message after provisioning carries a valid MAC; a plain sign-on is refused (63).
    #[default]
    Required,
    /// `--mac off`: messages of a connection that did not sign on with keys are served without a
    /// MAC (third-party test tools that have no keys). A connection that did sign on with keys
    /// is MAC'd both ways all the same.
    Off,
}

/// Reads a hex key file, or creates it owner-only (0600, directory 0700) with fresh random bytes.
pub(crate) fn key_file<const N: usize>(path: &Path) -> Result<[u8; N], AcquirerError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let bad = || AcquirerError::Admin(format!("{} does not hold a {}-byte key in hex", path.display(), N));
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        // A key others can read may have leaked: refused rather than used (as `pan.key`).
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            return Err(AcquirerError::Admin(format!(
                "{} is readable by others (mode {:o}): make it owner-only (chmod 600) or replace it",
                path.display(),
                m.permissions().mode() & 0o777
            )))
        }
        _ => {}
    }
    match std::fs::read_to_string(path) {
        Ok(t) => return hex::decode(t.trim()).ok().and_then(|v| <[u8; N]>::try_from(v).ok()).ok_or_else(bad),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AcquirerError::io(format!("reading {}", path.display()), e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| AcquirerError::io(format!("creating {}", dir.display()), e))?;
    }
    let k: [u8; N] = crate::at_rest::random().map_err(|e| AcquirerError::io("drawing a key", e))?;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => {
            f.write_all(hex::encode(k).as_bytes()).and_then(|_| f.sync_all()).map_err(|e| AcquirerError::io(format!("writing {}", path.display()), e))?;
            Ok(k)
        }
        // Another process made it first: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let t = std::fs::read_to_string(path).map_err(|e| AcquirerError::io(format!("reading {}", path.display()), e))?;
            hex::decode(t.trim()).ok().and_then(|v| <[u8; N]>::try_from(v).ok()).ok_or_else(bad)
        }
        Err(e) => Err(AcquirerError::io(format!("creating {}", path.display()), e)),
    }
}

/// Terminal master keys (wrapped under the acquirer's local master key) and the link policy.
pub(crate) struct KeyStore {
    /// Terminal id (DE 41, 8 bytes) → its TMK, RFC 3394-wrapped under `lmk` with its KCV.
    tmks: sled::Tree,
    /// Local master key: `DB/keystore/lmk.key` (0600). Never leaves this process.
    lmk: AesKey,
    signing: Mutex<SigningKey>,
    mac: Mutex<MacMode>,
}

impl KeyStore {
    pub(crate) fn open(db_dir: &Path, db: &sled::Db) -> Result<KeyStore, AcquirerError> {
        let lmk = AesKey::new(key_file::<16>(&db_dir.join("keystore").join("lmk.key"))?);
        Ok(KeyStore { tmks: db.open_tree("terminal_keys")?, lmk, signing: Mutex::new(test_signing_key()), mac: Mutex::new(MacMode::default()) })
    }

    fn tmk(&self, tid: &[u8]) -> Result<Option<AesKey>, AcquirerError> {
        let Some(v) = self.tmks.get(tid)? else { return Ok(None) };
        let w = WrappedAesKey::from_bytes(&v).map_err(|e| AcquirerError::Corrupt { tree: "terminal_keys", problem: e.to_string() })?;
        wrap::unwrap_aes(&self.lmk, &w, KeyUsage::Data).map(Some).map_err(|e| AcquirerError::Corrupt { tree: "terminal_keys", problem: e.to_string() })
    }

    fn store_tmk(&self, tid: &[u8], tmk: &AesKey) -> Result<(), AcquirerError> {
        let w = wrap::wrap_aes(&self.lmk, KeyUsage::Data, tmk).map_err(|e| AcquirerError::Admin(e.to_string()))?;
        self.tmks.insert(tid, &w.to_bytes()[..])?;
        self.tmks.flush()?;
        Ok(())
    }
}

/// The simulator's TEST ONLY signing key.
pub fn test_signing_key() -> SigningKey {
    let bytes: [u8; 32] = hex::decode(TEST_SIGNING_KEY).ok().and_then(|v| v.try_into().ok()).unwrap_or([1; 32]);
    SigningKey::from_bytes(&bytes.into()).unwrap_or_else(|_| SigningKey::random(&mut OsRng))
}

/// Reads a signing key file: the 32-byte P-256 private scalar in hex.
pub fn signing_key_from_file(path: &Path) -> Result<SigningKey, AcquirerError> {
    let text = std::fs::read_to_string(path).map_err(|e| AcquirerError::io(format!("reading {}", path.display()), e))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| AcquirerError::Seed(format!("{}: not a P-256 private key (64 hex digits)", path.display())))?;
    SigningKey::from_bytes(&bytes.into()).map_err(|_| AcquirerError::Seed(format!("{}: not a valid P-256 private key", path.display())))
}

/// The SEC1 uncompressed public key (hex) the terminal pins for `key`.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode_upper(VerifyingKey::from(key).to_encoded_point(false).as_bytes())
}

/// What a terminal's PIN block came to (DE 52 read under the connection's PIN key).
#[derive(Debug)]
pub(crate) enum PinInput {
    /// No DE 52.
    Absent,
    /// The PIN block deciphered to a well-formed PIN.
    Clear(shanfu_keys::pin_block::Pin),
    /// DE 52 present but not readable (no PIN key on this connection, or not a PIN block under it).
    Unreadable,
}

/// One connection's link state.
#[derive(Default)]
pub struct LinkSession {
    /// Terminal id and the working keys of its sign-on on this connection.
    keys: Option<(Vec<u8>, SessionKeys)>,
    /// A provisioning exchange waiting for its confirmation.
    pending: Option<AcquirerProvisioning>,
    /// A response code forced on the next answer (admin `faults code=…`), before its MAC.
    pub(crate) override_code: Option<String>,
    /// The connection has signed on with keys once: it is never served without a MAC again,
    /// even under `--mac off` after a failed second sign-on.
    was_keyed: bool,
}

impl LinkSession {
    /// Whether this connection signed on with keys.
    pub fn is_keyed(&self) -> bool {
        self.keys.is_some()
    }
}

/// The spec a body is in, and the one its answer goes in (a TPDU answered with its reply).
fn wire_of(body: &[u8]) -> (Spec, Spec) {
    if body.first() == Some(&0x60) && body.len() > 5 {
        let tpdu = Tpdu::from([body[0], body[1], body[2], body[3], body[4]]);
        (Spec::bcd87_with_tpdu(tpdu), Spec::bcd87().clone().with_header(Header::Tpdu(tpdu.reply())))
    } else {
        (ascii87().clone(), ascii87().clone())
    }
}

/// Whether a framed request is network management (0800: sign-on, echo, provisioning, deny
/// list) in either wire format — the TPDU of a bcd87 frame comes before its BCD MTI.
pub(crate) fn is_network(body: &[u8]) -> bool {
    if body.first() == Some(&0x60) && body.len() > 5 {
        body[5] == 0x08
    } else {
        body.get(..2) == Some(&b"08"[..])
    }
}

/// An answer that says only `rc` to `req` (echoing what identifies it).
pub(crate) fn refusal(req: &Message, rc: Rc) -> Option<Message> {
    let mut r = Message::new(response_mti(req.mti)?);
    for f in [
        field::PAN,
        field::PROCESSING_CODE,
        field::AMOUNT,
        field::TRANSMISSION_DATE_TIME,
        field::STAN,
        field::TERMINAL_ID,
        field::CURRENCY_CODE,
        field::NETWORK_MANAGEMENT_CODE,
    ] {
        if let Some(v) = req.get(f) {
            r.set(f, v.to_vec());
        }
    }
    r.set_str(field::RESPONSE_CODE, rc.code());
    Some(r)
}

impl Acquirer {
    /// Sets whether messages without a MAC are served ([`MacMode`]).
    pub fn set_mac_mode(&self, mode: MacMode) {
        *self.keys.mac.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Replaces the provisioning signing key (`shanfu acquirer --signing-key FILE`).
    pub fn set_signing_key(&self, key: SigningKey) {
        *self.keys.signing.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    fn mac_mode(&self) -> MacMode {
        *self.keys.mac.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers one framed body on a connection whose link state is `sess` (see the module doc).
    /// `None`: nothing to answer.
    pub fn handle_link(&self, sess: &mut LinkSession, body: &[u8]) -> Option<Vec<u8>> {
        let (spec, reply) = wire_of(body);
        let req = match spec.unpack(body) {
            Ok(m) => m,
            Err(e) if spec.encoding().header == Header::None => {
                let _ = e;
                return self.handle_bytes(body);
            }
            Err(e) => {
                tracing::warn!(error = %e, bytes = body.len(), "unreadable bcd87 request: not answered");
                return None;
            }
        };
        let plain = |m: Option<Message>| m.and_then(|m| reply.pack(&m).ok());
        // Only registered terminals, provisioning and sign-on included (issue 13).
        if let Some(rc) = self.registration_refusal(&req) {
            return plain(refusal(&req, rc));
        }
        let network = req.mti == Mti::NETWORK_MANAGEMENT_REQUEST;
        let code = req.get_str(field::NETWORK_MANAGEMENT_CODE);
        if network && code == Some(network::PROVISION) {
            return plain(self.provision_hello(sess, &req));
        }
        if network && code == Some(network::PROVISION_CONFIRM) {
            return plain(self.provision_confirm(sess, &req));
        }
        if network && code == Some(network::SIGN_ON) && req.get_str(field::RESERVED_PRIVATE_63) == Some(KEYS_REQUEST) {
            return self.keyed_sign_on(sess, &spec, &reply, body, &req);
        }
        match &sess.keys {
            Some((tid, keys)) => {
                let same_terminal = req.get(field::TERMINAL_ID) == Some(&tid[..]);
                let checked = keyed::verify(&spec, body, &req, &keys.mac);
                let resp = match checked {
                    Err(e) => {
                        tracing::warn!(mti = %req.mti, error = %e, "request MAC refused: not processed");
                        refusal(&req, Rc::SecurityViolation)
                    }
                    Ok(()) if !same_terminal => {
                        tracing::warn!(mti = %req.mti, "request names another terminal than the one signed on: not processed");
                        refusal(&req, Rc::SecurityViolation)
                    }
                    Ok(()) => {
                        let pin = match (req.get(field::PIN_DATA), req.get_str(field::PAN)) {
                            (None, _) => PinInput::Absent,
                            (Some(block), Some(pan)) => read_pin_block(&keys.pin, block, pan),
                            (Some(_), None) => PinInput::Unreadable,
                        };
                        self.handle_with(&req, pin).map(|r| forced(r, sess.override_code.take()))
                    }
                };
                let resp = resp?;
                keyed::pack_with_mac(&reply, &resp, &keys.mac).map_err(|e| tracing::error!(error = %e, "answer does not pack")).ok()
            }
            None if self.mac_mode() == MacMode::Off && !sess.was_keyed => {
                let pin = if req.has(field::PIN_DATA) { PinInput::Unreadable } else { PinInput::Absent };
                let code = sess.override_code.take();
                plain(self.handle_with(&req, pin).map(|r| forced(r, code)))
            }
            None => {
                tracing::warn!(mti = %req.mti, "message on a connection without keys (no keyed sign-on): refused 63");
                plain(refusal(&req, Rc::SecurityViolation))
            }
        }
    }

    /// 0800 / 170: the terminal's hello → the signed answer (docs/keys.md message 2).
    fn provision_hello(&self, sess: &mut LinkSession, req: &Message) -> Option<Message> {
        let hello = req.get_str(field::RESERVED_PRIVATE_63).and_then(|h| hex::decode(h).ok()).and_then(|b| TerminalHello::decode(&b).ok());
        let Some(hello) = hello else {
            tracing::warn!("provisioning hello unreadable: refused");
            return refusal(req, Rc::FormatError);
        };
        if req.get_str(field::TERMINAL_ID) != Some(hello.terminal_id.as_str()) {
            tracing::warn!("provisioning hello for another terminal id than DE 41: refused");
            return refusal(req, Rc::SecurityViolation);
        }
        let signing = self.keys.signing.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match provision::answer(&mut OsRng, &signing, &hello) {
            Ok((state, answer)) => {
                sess.pending = Some(state);
                let mut r = refusal(req, Rc::Approved)?;
                r.set_str(field::RESERVED_PRIVATE_63, &hex::encode_upper(answer.encode()));
                Some(r)
            }
            Err(e) => {
                tracing::warn!(error = %e, "provisioning hello refused");
                refusal(req, Rc::SecurityViolation)
            }
        }
    }

    /// 0800 / 171: the terminal's confirmation → the TMK is stored for its terminal id.
    fn provision_confirm(&self, sess: &mut LinkSession, req: &Message) -> Option<Message> {
        let confirm = req.get_str(field::RESERVED_PRIVATE_63).and_then(|h| hex::decode(h).ok()).and_then(|b| TerminalConfirm::decode(&b).ok());
        let (Some(state), Some(confirm)) = (sess.pending.take(), confirm) else {
            tracing::warn!("provisioning confirmation without a hello on this connection, or unreadable: refused");
            return refusal(req, Rc::SecurityViolation);
        };
        let tid = state.terminal_id().as_str().as_bytes().to_vec();
        if req.get(field::TERMINAL_ID) != Some(&tid[..]) {
            return refusal(req, Rc::SecurityViolation);
        }
        match state.confirm(&confirm) {
            Ok(tmk) => match self.keys.store_tmk(&tid, &tmk) {
                Ok(()) => {
                    tracing::info!(tid = %String::from_utf8_lossy(&tid), kcv = %hex::encode_upper(tmk.kcv().as_bytes()), "terminal master key provisioned");
                    refusal(req, Rc::Approved)
                }
                Err(e) => {
                    tracing::error!(error = %e, "storing the terminal master key failed");
                    refusal(req, Rc::SystemError)
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "provisioning confirmation refused");
                refusal(req, Rc::SecurityViolation)
            }
        }
    }

    /// 0800 / 001 with DE 63 = K1: MAC'd under the sign-on key of the terminal's TMK; answered
    /// with fresh working keys in DE 63 and MAC'd with the new MAC key.
    fn keyed_sign_on(&self, sess: &mut LinkSession, spec: &Spec, reply: &Spec, body: &[u8], req: &Message) -> Option<Vec<u8>> {
        let plain = |m: Option<Message>| m.and_then(|m| reply.pack(&m).ok());
        sess.keys = None;
        let Some(tid) = req.get(field::TERMINAL_ID).map(<[u8]>::to_vec) else { return plain(refusal(req, Rc::FormatError)) };
        let tmk = match self.keys.tmk(&tid) {
            Ok(Some(t)) => t,
            Ok(None) => {
                tracing::warn!(tid = %String::from_utf8_lossy(&tid), "sign-on for keys from a terminal without a master key: refused 63 (provision first)");
                return plain(refusal(req, Rc::SecurityViolation));
            }
            // Stored under another local master key (lmk.key lost or replaced): this terminal's
            // TMK is gone as far as this acquirer is concerned — 63 makes it provision again.
            Err(AcquirerError::Corrupt { problem, .. }) => {
                tracing::warn!(tid = %String::from_utf8_lossy(&tid), %problem, "stored terminal master key does not unwrap under lmk.key: refused 63 (provision again)");
                return plain(refusal(req, Rc::SecurityViolation));
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the terminal master key failed");
                return plain(refusal(req, Rc::SystemError));
            }
        };
        if let Err(e) = keyed::verify(spec, body, req, &keyed::signon_mac_key(&tmk)) {
            tracing::warn!(tid = %String::from_utf8_lossy(&tid), error = %e, "sign-on MAC refused: keys not changed");
            return plain(refusal(req, Rc::SecurityViolation));
        }
        let mut resp = self.handle_with(req, PinInput::Absent)?;
        if resp.get_str(field::RESPONSE_CODE) != Some(Rc::Approved.code()) {
            return plain(Some(resp));
        }
        let fresh = || -> Result<SessionKeys, String> {
            Ok(SessionKeys {
                pin: TdesKey::generate(&mut OsRng).map_err(|e| e.to_string())?,
                mac: AesKey::generate(&mut OsRng),
                data: AesKey::generate(&mut OsRng),
            })
        };
        let keys = match fresh().and_then(|k| WorkingKeys::wrap(&tmk, &k).map(|w| (k, w)).map_err(|e| e.to_string())) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "making working keys failed");
                return plain(refusal(req, Rc::SystemError));
            }
        };
        resp.set_str(field::RESERVED_PRIVATE_63, &keys.1.encode());
        tracing::info!(tid = %String::from_utf8_lossy(&tid), keys = ?keys.0, "sign-on: working keys issued");
        let packed = keyed::pack_with_mac(reply, &resp, &keys.0.mac).map_err(|e| tracing::error!(error = %e, "sign-on answer does not pack")).ok();
        sess.keys = Some((tid, keys.0));
        sess.was_keyed = true;
        packed
    }
}

/// The answer with DE 39 forced to `code` (fault injection), if any.
fn forced(mut m: Message, code: Option<String>) -> Message {
    if let Some(c) = code {
        m.set_str(field::RESPONSE_CODE, &c);
    }
    m
}

/// DE 52 (format 0) under the connection's PIN key with the PAN of DE 2.
fn read_pin_block(key: &TdesKey, block: &[u8], pan: &str) -> PinInput {
    let (Ok(block), Ok(pan)) = (<[u8; 8]>::try_from(block), shanfu_keys::pin_block::Pan::new(pan)) else { return PinInput::Unreadable };
    match shanfu_keys::pin_block::decrypt_format0(key, &block, &pan) {
        Ok(pin) => PinInput::Clear(pin),
        Err(_) => PinInput::Unreadable,
    }
}
