//! The test issuers of `keys/issuers.toml`: token / card ranges and their IMK-AC (TEST ONLY).

use kernels::cryptogram::CryptogramMethod;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
struct IssuerToml {
    name: String,
    pan_prefix: String,
    imk_ac: String,
    cryptogram: String,
}

#[derive(Debug, Clone, Deserialize)]
struct IssuersFile {
    issuer: Vec<IssuerToml>,
}

/// One issuer (or token service) range.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub name: String,
    pub pan_prefix: String,
    pub imk_ac: [u8; 16],
    pub method: CryptogramMethod,
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("issuers file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("issuer {0}: {1}")]
    Field(String, String),
}

/// The built-in issuers file text.
pub const ISSUERS_TOML: &str = include_str!("../keys/issuers.toml");

/// Parses an issuers file.
pub fn parse(text: &str) -> Result<Vec<Issuer>, IssuerError> {
    let f: IssuersFile = toml::from_str(text)?;
    f.issuer
        .into_iter()
        .map(|i| {
            let imk = hex::decode(&i.imk_ac)
                .ok()
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
                .ok_or_else(|| IssuerError::Field(i.name.clone(), "imk_ac is not 16 bytes of hex".into()))?;
            let method = match i.cryptogram.as_str() {
                "emv-csk" => CryptogramMethod::EmvCsk,
                "visa-cvn10" => CryptogramMethod::VisaCvn10,
                other => return Err(IssuerError::Field(i.name.clone(), format!("unknown cryptogram method {other:?}"))),
            };
            Ok(Issuer { name: i.name, pan_prefix: i.pan_prefix, imk_ac: imk, method })
        })
        .collect()
}

/// The built-in issuers.
pub fn builtin() -> Result<Vec<Issuer>, IssuerError> {
    parse(ISSUERS_TOML)
}

/// The issuer whose range holds `pan` (longest prefix wins).
pub fn for_pan<'a>(issuers: &'a [Issuer], pan: &str) -> Option<&'a Issuer> {
    issuers.iter().filter(|i| pan.starts_with(&i.pan_prefix)).max_by_key(|i| i.pan_prefix.len())
}
