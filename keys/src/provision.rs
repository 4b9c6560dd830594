//! Terminal master key (TMK) establishment: the terminal and the acquirer agree on a fresh
//! AES-128 TMK over an untrusted link, the terminal authenticating the acquirer by a public key
//! pinned in its configuration. Standards: ECDH on P-256 (the NIST SP 800-56A rev. 3 primitive;
//! the acquirer's key is always ephemeral, the terminal's ephemeral or static), authenticated by
//! an ECDSA P-256 / SHA-256 signature (FIPS 186-5; RFC 6979 deterministic nonces, so signing
//! needs no randomness) by the acquirer's long-term key; RFC 5869 HKDF-SHA256 for the key
//! derivation (the two-step derivation of NIST SP 800-56C).
//!
//! Three messages (byte layouts in docs/keys.md):
//!
//! 1. [`TerminalHello`] (terminal → acquirer): terminal id, the terminal's P-256 public key
//!    (ephemeral from [`TerminalProvisioning::start`], or a static key registered at enrolment
//!    with [`TerminalProvisioning::start_with_static`]), a 32-byte terminal nonce.
//! 2. [`AcquirerAnswer`] (acquirer → terminal): the acquirer's ephemeral P-256 public key, a
//!    32-byte acquirer nonce, the KCV of the derived TMK, and an ECDSA P-256 signature by the
//!    acquirer's long-term key over `"shanfu provision v1" ‖ hello ‖ answer without signature`.
//!    Because the hello (with the terminal's nonce) is signed, an answer replayed to another
//!    session, or to another terminal, does not verify.
//! 3. [`TerminalConfirm`] (terminal → acquirer): the terminal's KCV of the TMK and a 16-byte
//!    confirmation tag `AES-CMAC(TMK, "shanfu TMK confirm v1" ‖ hello ‖ answer)`, which only a
//!    holder of the TMK can make (the KCV alone is visible in the answer and could be echoed).
//!
//! Both sides derive `TMK = HKDF-SHA256(salt = terminal nonce ‖ acquirer nonce,
//! IKM = ECDH x-coordinate, info = "shanfu TMK v1" ‖ terminal id, L = 16)`.
//!
//! What each side checks: the terminal — message type and version, exact field lengths, a valid
//! curve point, the signature under the **pinned** key, then its KCV against the answer's; the
//! acquirer — the same parsing, then the confirmation tag (and KCV) in constant time. An acquirer
//! that keeps a register of terminal static keys compares `hello.terminal_key` with it before
//! answering: without such a register the terminal is not authenticated by this exchange (any
//! device can ask for a TMK in a terminal id's name), which is why the sign-on that follows must
//! still be authorised by the acquirer's terminal register.
//!
//! Encoding: `type(1) ‖ version(1) ‖ field*`, each field `length(2, big-endian) ‖ value`, fields in
//! a fixed order with fixed lengths (the terminal id 1–32 bytes); parsing refuses anything else
//! (wrong type or version, a wrong length, trailing bytes) and never panics.

use crate::kcv::Kcv;
use crate::key::AesKey;
use core::fmt;
use hkdf::Hkdf;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Protocol version carried in every message.
pub const VERSION: u8 = 1;
/// Message type of [`TerminalHello`].
pub const TYPE_HELLO: u8 = 0x01;
/// Message type of [`AcquirerAnswer`].
pub const TYPE_ANSWER: u8 = 0x02;
/// Message type of [`TerminalConfirm`].
pub const TYPE_CONFIRM: u8 = 0x03;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 32;
/// SEC1 uncompressed P-256 point: `04 ‖ x ‖ y`.
pub const PUBLIC_KEY_LEN: usize = 65;
/// ECDSA P-256 signature `r ‖ s`.
pub const SIGNATURE_LEN: usize = 64;
/// Confirmation tag length (full AES-CMAC).
pub const CONFIRM_TAG_LEN: usize = 16;
/// Prefix of the bytes the acquirer signs.
pub const SIGNATURE_CONTEXT: &[u8] = b"shanfu provision v1";
/// Prefix of the HKDF info (then the terminal id).
pub const TMK_INFO: &[u8] = b"shanfu TMK v1";
/// Prefix of the confirmation tag's input.
pub const CONFIRM_CONTEXT: &[u8] = b"shanfu TMK confirm v1";

/// Why a provisioning message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// The message ends in the middle of a field.
    #[error("message truncated")]
    Truncated,
    /// Bytes after the last field.
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
    /// Not the message expected here.
    #[error("message type {got:#04x}, expected {expected:#04x}")]
    MessageType {
        /// Type expected.
        expected: u8,
        /// Type found.
        got: u8,
    },
    /// A protocol version this code does not speak.
    #[error("protocol version {0} not supported")]
    Version(u8),
    /// A field of the wrong length.
    #[error("field {field} is {got} bytes, expected {expected}")]
    FieldLength {
        /// Field name.
        field: &'static str,
        /// Length expected (the maximum for the terminal id).
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// Terminal id not 1–32 printable ASCII characters.
    #[error("terminal id must be 1 to 32 printable ASCII characters")]
    TerminalId,
    /// Not an uncompressed point on P-256.
    #[error("not a valid P-256 public key")]
    PublicKey,
    /// Not an encoding of an ECDSA signature.
    #[error("malformed signature")]
    MalformedSignature,
    /// The signature does not verify under the pinned acquirer key: another key, a tampered
    /// message, or an answer replayed from another exchange.
    #[error("acquirer signature does not verify under the pinned key")]
    BadSignature,
    /// The other side's KCV of the TMK is not ours.
    #[error("TMK key check value does not match")]
    KcvMismatch,
    /// The terminal's confirmation tag is wrong.
    #[error("TMK confirmation does not verify")]
    ConfirmMismatch,
    /// Key derivation or signing failed (not expected to happen).
    #[error("key derivation failed")]
    Derivation,
}

/// A terminal id (ISO 8583 DE 41 is 8 characters): 1–32 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TerminalId(String);

impl TerminalId {
    /// Maximum length.
    pub const MAX_LEN: usize = 32;

    /// Checks and wraps an id.
    pub fn new(id: &str) -> Result<Self, ProvisionError> {
        let ok = (1..=Self::MAX_LEN).contains(&id.len()) && id.bytes().all(|b| (0x20..=0x7E).contains(&b));
        if ok {
            Ok(TerminalId(id.to_owned()))
        } else {
            Err(ProvisionError::TerminalId)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn put_field(out: &mut Vec<u8>, value: &[u8]) {
    // Every field is at most 65 bytes, so the length always fits in two bytes.
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

fn encode_point(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

fn decode_point(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, ProvisionError> {
    if bytes[0] != 0x04 {
        return Err(ProvisionError::PublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| ProvisionError::PublicKey)
}

/// Reads `type ‖ version ‖ field*` without ever indexing past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], expected_type: u8) -> Result<Self, ProvisionError> {
        let (&ty, rest) = bytes.split_first().ok_or(ProvisionError::Truncated)?;
        if ty != expected_type {
            return Err(ProvisionError::MessageType { expected: expected_type, got: ty });
        }
        let (&version, rest) = rest.split_first().ok_or(ProvisionError::Truncated)?;
        if version != VERSION {
            return Err(ProvisionError::Version(version));
        }
        Ok(Reader { rest })
    }

    fn field(&mut self) -> Result<&'a [u8], ProvisionError> {
        let (len, rest) = self.rest.split_at_checked(2).ok_or(ProvisionError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (value, rest) = rest.split_at_checked(len).ok_or(ProvisionError::Truncated)?;
        self.rest = rest;
        Ok(value)
    }

    fn fixed<const N: usize>(&mut self, name: &'static str) -> Result<[u8; N], ProvisionError> {
        let value = self.field()?;
        value.try_into().map_err(|_| ProvisionError::FieldLength { field: name, expected: N, got: value.len() })
    }

    fn finish(self) -> Result<(), ProvisionError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(ProvisionError::TrailingBytes(n)),
        }
    }
}

/// Message 1, terminal → acquirer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalHello {
    /// The terminal's id (the HKDF info binds the TMK to it).
    pub terminal_id: TerminalId,
    /// The terminal's P-256 public key (ephemeral or registered static).
    pub terminal_key: PublicKey,
    /// Fresh random bytes of the terminal.
    pub terminal_nonce: [u8; NONCE_LEN],
}

impl TerminalHello {
    /// `01 ‖ 01 ‖ F(terminal id) ‖ F(public key, 65) ‖ F(nonce, 32)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TYPE_HELLO, VERSION];
        put_field(&mut out, self.terminal_id.as_str().as_bytes());
        put_field(&mut out, &encode_point(&self.terminal_key));
        put_field(&mut out, &self.terminal_nonce);
        out
    }

    /// Parses a hello (canonical: `decode(b)?.encode() == b`).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProvisionError> {
        let mut r = Reader::new(bytes, TYPE_HELLO)?;
        let id = r.field()?;
        if id.len() > TerminalId::MAX_LEN {
            return Err(ProvisionError::FieldLength { field: "terminal_id", expected: TerminalId::MAX_LEN, got: id.len() });
        }
        let terminal_id = core::str::from_utf8(id).map_err(|_| ProvisionError::TerminalId).and_then(TerminalId::new)?;
        let terminal_key = decode_point(&r.fixed::<PUBLIC_KEY_LEN>("terminal_key")?)?;
        let terminal_nonce = r.fixed::<NONCE_LEN>("terminal_nonce")?;
        r.finish()?;
        Ok(TerminalHello { terminal_id, terminal_key, terminal_nonce })
    }
}

/// Message 2, acquirer → terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerAnswer {
    /// The acquirer's ephemeral P-256 public key.
    pub acquirer_key: PublicKey,
    /// Fresh random bytes of the acquirer.
    pub acquirer_nonce: [u8; NONCE_LEN],
    /// KCV of the TMK the acquirer derived.
    pub kcv: Kcv,
    /// ECDSA P-256 / SHA-256 signature by the acquirer's long-term key over
    /// `SIGNATURE_CONTEXT ‖ hello ‖ signed_part()`.
    pub signature: Signature,
}

impl AcquirerAnswer {
    /// The answer without its signature field: `02 ‖ 01 ‖ F(key, 65) ‖ F(nonce, 32) ‖ F(KCV, 3)`.
    pub fn signed_part(&self) -> Vec<u8> {
        answer_signed_part(&self.acquirer_key, &self.acquirer_nonce, &self.kcv)
    }

    /// `signed_part() ‖ F(signature r ‖ s, 64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_part();
        put_field(&mut out, &self.signature.to_bytes());
        out
    }

    /// Parses an answer (canonical). The signature is checked by [`TerminalProvisioning::finish`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ProvisionError> {
        let mut r = Reader::new(bytes, TYPE_ANSWER)?;
        let acquirer_key = decode_point(&r.fixed::<PUBLIC_KEY_LEN>("acquirer_key")?)?;
        let acquirer_nonce = r.fixed::<NONCE_LEN>("acquirer_nonce")?;
        let kcv = Kcv::from_bytes(r.fixed::<{ Kcv::LEN }>("kcv")?);
        let sig = r.fixed::<SIGNATURE_LEN>("signature")?;
        let signature = Signature::from_slice(&sig).map_err(|_| ProvisionError::MalformedSignature)?;
        r.finish()?;
        Ok(AcquirerAnswer { acquirer_key, acquirer_nonce, kcv, signature })
    }
}

/// Message 3, terminal → acquirer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalConfirm {
    /// The terminal's KCV of the TMK.
    pub kcv: Kcv,
    /// `AES-CMAC(TMK, CONFIRM_CONTEXT ‖ hello ‖ answer)`.
    pub tag: [u8; CONFIRM_TAG_LEN],
}

impl TerminalConfirm {
    /// `03 ‖ 01 ‖ F(KCV, 3) ‖ F(tag, 16)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TYPE_CONFIRM, VERSION];
        put_field(&mut out, self.kcv.as_bytes());
        put_field(&mut out, &self.tag);
        out
    }

    /// Parses a confirmation (canonical).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProvisionError> {
        let mut r = Reader::new(bytes, TYPE_CONFIRM)?;
        let kcv = Kcv::from_bytes(r.fixed::<{ Kcv::LEN }>("kcv")?);
        let tag = r.fixed::<CONFIRM_TAG_LEN>("tag")?;
        r.finish()?;
        Ok(TerminalConfirm { kcv, tag })
    }
}

fn answer_signed_part(acquirer_key: &PublicKey, acquirer_nonce: &[u8; NONCE_LEN], kcv: &Kcv) -> Vec<u8> {
    let mut out = vec![TYPE_ANSWER, VERSION];
    put_field(&mut out, &encode_point(acquirer_key));
    put_field(&mut out, acquirer_nonce);
    put_field(&mut out, kcv.as_bytes());
    out
}

/// The bytes the acquirer signs: `SIGNATURE_CONTEXT ‖ hello ‖ answer without its signature`.
fn signed_bytes(hello: &TerminalHello, answer_signed_part: &[u8]) -> Vec<u8> {
    let mut m = SIGNATURE_CONTEXT.to_vec();
    m.extend(hello.encode());
    m.extend_from_slice(answer_signed_part);
    m
}

fn confirm_tag(tmk: &AesKey, hello: &TerminalHello, answer: &AcquirerAnswer) -> [u8; CONFIRM_TAG_LEN] {
    let mut m = CONFIRM_CONTEXT.to_vec();
    m.extend(hello.encode());
    m.extend(answer.encode());
    crate::mac::aes_cmac(tmk, &m)
}

/// ECDH (x-coordinate) then HKDF-SHA256 as in the module doc.
fn derive_tmk(own: &SecretKey, peer: &PublicKey, hello: &TerminalHello, acquirer_nonce: &[u8; NONCE_LEN]) -> Result<AesKey, ProvisionError> {
    let shared = p256::ecdh::diffie_hellman(own.to_nonzero_scalar(), peer.as_affine());
    let mut salt = [0u8; 2 * NONCE_LEN];
    salt[..NONCE_LEN].copy_from_slice(&hello.terminal_nonce);
    salt[NONCE_LEN..].copy_from_slice(acquirer_nonce);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes());
    let mut info = TMK_INFO.to_vec();
    info.extend_from_slice(hello.terminal_id.as_str().as_bytes());
    let mut okm = Zeroizing::new([0u8; AesKey::LEN]);
    hk.expand(&info, &mut okm[..]).map_err(|_| ProvisionError::Derivation)?;
    Ok(AesKey::new(*okm))
}

/// The terminal's side of one exchange: [`start`](Self::start) → send the hello →
/// [`finish`](Self::finish) with the answer → send the confirmation, keep the TMK.
pub struct TerminalProvisioning {
    secret: SecretKey,
    hello: TerminalHello,
    pinned: VerifyingKey,
}

impl TerminalProvisioning {
    /// Starts an exchange with a fresh ephemeral key and nonce from `rng`; `pinned` is the
    /// acquirer's long-term public key from the terminal's configuration.
    pub fn start(rng: &mut impl CryptoRngCore, terminal_id: TerminalId, pinned: VerifyingKey) -> (Self, TerminalHello) {
        let secret = SecretKey::random(rng);
        Self::start_with_static(rng, terminal_id, secret, pinned)
    }

    /// Starts an exchange with the terminal's static key (registered with the acquirer at
    /// enrolment); the nonce still comes from `rng`.
    pub fn start_with_static(rng: &mut impl CryptoRngCore, terminal_id: TerminalId, secret: SecretKey, pinned: VerifyingKey) -> (Self, TerminalHello) {
        let mut terminal_nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut terminal_nonce);
        let hello = TerminalHello { terminal_id, terminal_key: secret.public_key(), terminal_nonce };
        (TerminalProvisioning { secret, hello: hello.clone(), pinned }, hello)
    }

    /// The hello this exchange sent.
    pub fn hello(&self) -> &TerminalHello {
        &self.hello
    }

    /// Checks the answer (signature under the pinned key over this exchange's hello, then the
    /// KCV) and returns the TMK and the confirmation to send. Consumes the exchange: one answer
    /// per hello.
    pub fn finish(self, answer: &AcquirerAnswer) -> Result<(AesKey, TerminalConfirm), ProvisionError> {
        self.pinned.verify(&signed_bytes(&self.hello, &answer.signed_part()), &answer.signature).map_err(|_| ProvisionError::BadSignature)?;
        let tmk = derive_tmk(&self.secret, &answer.acquirer_key, &self.hello, &answer.acquirer_nonce)?;
        let kcv = tmk.kcv();
        if !kcv.ct_eq(&answer.kcv) {
            return Err(ProvisionError::KcvMismatch);
        }
        let tag = confirm_tag(&tmk, &self.hello, answer);
        Ok((tmk, TerminalConfirm { kcv, tag }))
    }
}

impl fmt::Debug for TerminalProvisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalProvisioning").field("terminal_id", &self.hello.terminal_id).finish_non_exhaustive()
    }
}

/// The acquirer's side of one exchange, between its answer and the terminal's confirmation.
pub struct AcquirerProvisioning {
    tmk: AesKey,
    expected_tag: [u8; CONFIRM_TAG_LEN],
    terminal_id: TerminalId,
}

/// Answers a terminal's hello (acquirer side): a fresh ephemeral key and nonce from `rng`, the
/// TMK derived, its KCV and the signature by `signing_key` (the acquirer's long-term key whose
/// public half terminals pin). The caller has already checked that it knows the terminal id (and,
/// with a register of static keys, `hello.terminal_key`).
pub fn answer(rng: &mut impl CryptoRngCore, signing_key: &SigningKey, hello: &TerminalHello) -> Result<(AcquirerProvisioning, AcquirerAnswer), ProvisionError> {
    let secret = SecretKey::random(rng);
    let mut acquirer_nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut acquirer_nonce);
    let tmk = derive_tmk(&secret, &hello.terminal_key, hello, &acquirer_nonce)?;
    let acquirer_key = secret.public_key();
    let kcv = tmk.kcv();
    let to_sign = signed_bytes(hello, &answer_signed_part(&acquirer_key, &acquirer_nonce, &kcv));
    let signature = signing_key.try_sign(&to_sign).map_err(|_| ProvisionError::Derivation)?;
    let answer = AcquirerAnswer { acquirer_key, acquirer_nonce, kcv, signature };
    let expected_tag = confirm_tag(&tmk, hello, &answer);
    Ok((AcquirerProvisioning { tmk, expected_tag, terminal_id: hello.terminal_id.clone() }, answer))
}

impl AcquirerProvisioning {
    /// The terminal this exchange is for.
    pub fn terminal_id(&self) -> &TerminalId {
        &self.terminal_id
    }

    /// Checks the terminal's confirmation (KCV and tag, constant time) and hands over the TMK.
    pub fn confirm(self, confirm: &TerminalConfirm) -> Result<AesKey, ProvisionError> {
        if !self.tmk.kcv().ct_eq(&confirm.kcv) {
            return Err(ProvisionError::KcvMismatch);
        }
        if !bool::from(self.expected_tag.ct_eq(&confirm.tag)) {
            return Err(ProvisionError::ConfirmMismatch);
        }
        Ok(self.tmk)
    }
}

impl fmt::Debug for AcquirerProvisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquirerProvisioning").field("terminal_id", &self.terminal_id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestRng;
    use rand_core::RngCore;

    /// TEST ONLY: an acquirer long-term key made from a fixed test seed.
    fn acquirer_key(seed: u64) -> SigningKey {
        SigningKey::random(&mut TestRng::new(seed))
    }

    fn tid(s: &str) -> TerminalId {
        TerminalId::new(s).unwrap()
    }

    /// Runs a whole exchange through the byte encodings, as over the wire.
    fn exchange(rng: &mut TestRng, acq: &SigningKey, pinned: VerifyingKey) -> Result<(AesKey, AesKey), ProvisionError> {
        let (terminal, hello) = TerminalProvisioning::start(rng, tid("12345678"), pinned);
        let hello_rx = TerminalHello::decode(&hello.encode())?;
        let (acquirer, ans) = answer(rng, acq, &hello_rx)?;
        let ans_rx = AcquirerAnswer::decode(&ans.encode())?;
        let (t_tmk, confirm) = terminal.finish(&ans_rx)?;
        let confirm_rx = TerminalConfirm::decode(&confirm.encode())?;
        let a_tmk = acquirer.confirm(&confirm_rx)?;
        Ok((t_tmk, a_tmk))
    }

    /// The derivation pinned down for other implementations (docs/keys.md): TEST ONLY private
    /// keys 11…11 (terminal) and 22…22 (acquirer), nonces A0…A0 and B0…B0, terminal id
    /// "12345678". Expected values computed independently with Python `cryptography` 48
    /// (ECDH on SECP256R1, HKDF-SHA256, CMAC-AES), not with this crate.
    #[test]
    fn tmk_derivation_known_answer() {
        let t = SecretKey::from_slice(&[0x11; 32]).unwrap();
        let a = SecretKey::from_slice(&[0x22; 32]).unwrap();
        let hello = TerminalHello { terminal_id: tid("12345678"), terminal_key: t.public_key(), terminal_nonce: [0xA0; 32] };
        assert_eq!(
            encode_point(&t.public_key()),
            crate::test_util::hex_bytes::<65>(concat!(
                "040217E617F0B6443928278F96999E69A23A4F2C152BDF6D6CDF66E5B80282D4ED",
                "194A7DEBCB97712D2DDA3CA85AA8765A56F45FC758599652F2897C65306E5794"
            ))
        );
        assert_eq!(
            encode_point(&a.public_key()),
            crate::test_util::hex_bytes::<65>(concat!(
                "04D65A93977CAA3D1B081852FF57A79E465F1660577304BAEAD505DD3A48589CF3",
                "50185E895372DF6221EA3A137557E473FDDB6755F05BD507C3C533FCE9C91285"
            ))
        );
        let from_terminal = derive_tmk(&t, &a.public_key(), &hello, &[0xB0; 32]).unwrap();
        let from_acquirer = derive_tmk(&a, &t.public_key(), &hello, &[0xB0; 32]).unwrap();
        assert_eq!(from_terminal.expose_secret(), &crate::test_util::hex_bytes::<16>("0591D00DC51FD20513C48A99A100D0DD"));
        assert_eq!(from_acquirer.expose_secret(), from_terminal.expose_secret());
        assert_eq!(from_terminal.kcv().to_string(), "531D7C");
    }

    #[test]
    fn a_full_exchange_agrees_on_the_tmk() {
        let mut rng = TestRng::new(10);
        let acq = acquirer_key(100);
        let (t, a) = exchange(&mut rng, &acq, *acq.verifying_key()).unwrap();
        assert_eq!(t.expose_secret(), a.expose_secret());
        assert_eq!(t.kcv(), a.kcv());
        // A second exchange gives another TMK (fresh keys and nonces).
        let (t2, _) = exchange(&mut rng, &acq, *acq.verifying_key()).unwrap();
        assert_ne!(t2.expose_secret(), t.expose_secret());
    }

    #[test]
    fn a_static_terminal_key_works_too() {
        let mut rng = TestRng::new(11);
        let acq = acquirer_key(100);
        let static_key = SecretKey::random(&mut rng);
        let (terminal, hello) = TerminalProvisioning::start_with_static(&mut rng, tid("T0000001"), static_key.clone(), *acq.verifying_key());
        assert_eq!(hello.terminal_key, static_key.public_key());
        let (acquirer, ans) = answer(&mut rng, &acq, &hello).unwrap();
        let (t, confirm) = terminal.finish(&ans).unwrap();
        assert_eq!(acquirer.confirm(&confirm).unwrap().expose_secret(), t.expose_secret());
    }

    #[test]
    fn an_answer_signed_by_a_key_other_than_the_pinned_one_is_refused() {
        let mut rng = TestRng::new(12);
        let pinned = acquirer_key(100);
        let impostor = acquirer_key(200);
        assert_eq!(exchange(&mut rng, &impostor, *pinned.verifying_key()).err(), Some(ProvisionError::BadSignature));
    }

    #[test]
    fn tampered_messages_are_refused() {
        let acq = acquirer_key(100);
        // Every byte of the answer after the header, flipped in turn: refused at parsing or at the
        // signature, never accepted.
        let mut rng = TestRng::new(13);
        let (_, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let (_, ans) = answer(&mut rng, &acq, &hello).unwrap();
        let wire = ans.encode();
        for i in 0..wire.len() {
            let mut rng = TestRng::new(13);
            let (terminal, hello2) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
            assert_eq!(hello2, hello);
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            let outcome = AcquirerAnswer::decode(&bad).and_then(|a| terminal.finish(&a));
            assert!(outcome.is_err(), "byte {i} flipped was accepted");
        }
        // A hello changed on its way (another terminal id): the acquirer signs what it received,
        // the terminal checks what it sent.
        let mut rng = TestRng::new(14);
        let (terminal, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let mut changed = hello.clone();
        changed.terminal_id = tid("12345679");
        let (_, ans) = answer(&mut rng, &acq, &changed).unwrap();
        assert_eq!(terminal.finish(&ans).err(), Some(ProvisionError::BadSignature));
        // A confirmation changed on its way.
        let mut rng = TestRng::new(15);
        let (terminal, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let (acquirer, ans) = answer(&mut rng, &acq, &hello).unwrap();
        let (_, mut confirm) = terminal.finish(&ans).unwrap();
        confirm.tag[0] ^= 0x80;
        assert_eq!(acquirer.confirm(&confirm).err(), Some(ProvisionError::ConfirmMismatch));
    }

    /// The confirmation cannot be made from the answer alone: echoing the answer's KCV with a
    /// guessed tag is refused.
    #[test]
    fn an_echoed_kcv_does_not_confirm() {
        let mut rng = TestRng::new(16);
        let acq = acquirer_key(100);
        let (_, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let (acquirer, ans) = answer(&mut rng, &acq, &hello).unwrap();
        let forged = TerminalConfirm { kcv: ans.kcv, tag: [0; CONFIRM_TAG_LEN] };
        assert_eq!(acquirer.confirm(&forged).err(), Some(ProvisionError::ConfirmMismatch));
    }

    #[test]
    fn an_answer_replayed_to_another_terminal_nonce_is_refused() {
        let mut rng = TestRng::new(17);
        let acq = acquirer_key(100);
        let (first, hello1) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let (_, ans1) = answer(&mut rng, &acq, &hello1).unwrap();
        assert!(first.finish(&ans1).is_ok());
        // Same terminal, next exchange (new nonce and key): the old answer is replayed.
        let (second, hello2) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        assert_ne!(hello2.terminal_nonce, hello1.terminal_nonce);
        assert_eq!(second.finish(&ans1).err(), Some(ProvisionError::BadSignature));
        // Same terminal key, only the nonce differs: still refused.
        let static_key = SecretKey::random(&mut rng);
        let (a, h_a) = TerminalProvisioning::start_with_static(&mut rng, tid("12345678"), static_key.clone(), *acq.verifying_key());
        let (_, ans_a) = answer(&mut rng, &acq, &h_a).unwrap();
        let (b, _) = TerminalProvisioning::start_with_static(&mut rng, tid("12345678"), static_key, *acq.verifying_key());
        assert_eq!(b.finish(&ans_a).err(), Some(ProvisionError::BadSignature));
        assert!(a.finish(&ans_a).is_ok());
    }

    #[test]
    fn encodings_round_trip_and_are_canonical() {
        let mut rng = TestRng::new(18);
        let acq = acquirer_key(100);
        let (terminal, hello) = TerminalProvisioning::start(&mut rng, tid("POS 0001"), *acq.verifying_key());
        let h = hello.encode();
        assert_eq!(h.len(), 113); // 2 + (2 + 8) + (2 + 65) + (2 + 32), as in docs/keys.md
        assert_eq!(TerminalHello::decode(&h).unwrap().encode(), h);
        let (_, ans) = answer(&mut rng, &acq, &hello).unwrap();
        let a = ans.encode();
        assert_eq!(a.len(), 174); // 2 + 67 + 34 + 5 + 66
        assert_eq!(AcquirerAnswer::decode(&a).unwrap().encode(), a);
        let (_, confirm) = terminal.finish(&ans).unwrap();
        let c = confirm.encode();
        assert_eq!(c.len(), 25); // 2 + 5 + 18
        assert_eq!(TerminalConfirm::decode(&c).unwrap(), confirm);
    }

    #[test]
    fn parsing_refuses_malformed_messages_without_panicking() {
        let mut rng = TestRng::new(19);
        let acq = acquirer_key(100);
        let (_, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let h = hello.encode();
        // Every truncation.
        for n in 0..h.len() {
            assert!(TerminalHello::decode(&h[..n]).is_err(), "truncated at {n}");
        }
        // Trailing bytes, other type, other version.
        assert_eq!(TerminalHello::decode(&[h.as_slice(), &[0]].concat()).err(), Some(ProvisionError::TrailingBytes(1)));
        assert_eq!(AcquirerAnswer::decode(&h).err(), Some(ProvisionError::MessageType { expected: 2, got: 1 }));
        let mut v2 = h.clone();
        v2[1] = 2;
        assert_eq!(TerminalHello::decode(&v2).err(), Some(ProvisionError::Version(2)));
        // A compressed point (33 bytes) and a point not on the curve.
        let compressed = hello.terminal_key.to_encoded_point(true);
        let mut m = vec![TYPE_HELLO, VERSION];
        put_field(&mut m, b"12345678");
        put_field(&mut m, compressed.as_bytes());
        put_field(&mut m, &[0; 32]);
        assert!(matches!(TerminalHello::decode(&m), Err(ProvisionError::FieldLength { field: "terminal_key", .. })));
        let mut off_curve = h.clone();
        let last_y = 2 + 2 + 8 + 2 + 64;
        off_curve[last_y] ^= 1;
        assert_eq!(TerminalHello::decode(&off_curve).err(), Some(ProvisionError::PublicKey));
        // Bad terminal ids.
        let mut m = vec![TYPE_HELLO, VERSION];
        put_field(&mut m, b"bad\nid");
        assert_eq!(TerminalHello::decode(&m).err(), Some(ProvisionError::TerminalId));
        assert!(TerminalId::new("").is_err());
        assert!(TerminalId::new(&"9".repeat(33)).is_err());
        // A length prefix far past the end.
        assert_eq!(TerminalConfirm::decode(&[TYPE_CONFIRM, VERSION, 0xFF, 0xFF, 1]).err(), Some(ProvisionError::Truncated));
        // Random bytes behind each header.
        for i in 0..500u32 {
            let mut junk = vec![0u8; (i % 200) as usize];
            rng.fill_bytes(&mut junk);
            for ty in [TYPE_HELLO, TYPE_ANSWER, TYPE_CONFIRM] {
                let msg = [&[ty, VERSION][..], &junk].concat();
                let _ = TerminalHello::decode(&msg);
                let _ = AcquirerAnswer::decode(&msg);
                let _ = TerminalConfirm::decode(&msg);
            }
        }
    }

    #[test]
    fn debug_of_an_exchange_shows_no_secret() {
        let mut rng = TestRng::new(20);
        let acq = acquirer_key(100);
        let (terminal, hello) = TerminalProvisioning::start(&mut rng, tid("12345678"), *acq.verifying_key());
        let (acquirer, _) = answer(&mut rng, &acq, &hello).unwrap();
        assert_eq!(format!("{terminal:?}"), "TerminalProvisioning { terminal_id: TerminalId(\"12345678\"), .. }");
        assert_eq!(format!("{acquirer:?}"), "AcquirerProvisioning { terminal_id: TerminalId(\"12345678\"), .. }");
    }
}
