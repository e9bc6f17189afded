//! Compact JSON Web Signatures, the form of ServiceAccount tokens: signing with the
//! service-account private key (ES256, ES384 or RS256 as upstream picks by key type) and
//! verifying against every public key the server accepts. Keys load from PEM (PKCS#8,
//! PKCS#1 RSA, SEC1 EC, SPKI public keys, certificates); `kid` is upstream's: the
//! unpadded base64url SHA-256 of the public key's SPKI DER.
//!
//! Invariant: a token verifies only if its header's `alg` matches the key family and
//! the signature checks; claims are not looked at here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("invalid signature")]
    BadSignature,
    #[error("unsupported key: {0}")]
    Key(String),
}

/// The family and curve of a key, with its JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    Rs256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Rs256 => "RS256",
        }
    }
}

/// A public key tokens are verified with.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub alg: Alg,
    /// The uncompressed EC point, or the PKCS#1 RSAPublicKey DER.
    raw: Vec<u8>,
    pub kid: String,
}

/// The private key tokens are signed with.
pub struct SigningKey {
    inner: Signer,
    pub public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("public", &self.public).finish_non_exhaustive()
    }
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

impl SigningKey {
    /// The first private key in a PEM text.
    pub fn from_pem(pem: &str) -> Result<SigningKey, JwtError> {
        for block in pem_blocks(pem) {
            match block.label.as_str() {
                "PRIVATE KEY" => return Self::from_pkcs8(&block.der),
                "RSA PRIVATE KEY" => {
                    let kp = RsaKeyPair::from_der(&block.der)
                        .map_err(|e| JwtError::Key(format!("RSA key: {e}")))?;
                    return Ok(Self::rsa(kp));
                }
                "EC PRIVATE KEY" => return Self::from_pkcs8(&sec1_to_pkcs8(&block.der)?),
                _ => {}
            }
        }
        Err(JwtError::Key("no private key in PEM".into()))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, JwtError> {
        let rng = SystemRandom::new();
        for (alg, ring_alg) in [
            (Alg::Es256, &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            (Alg::Es384, &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        ] {
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(ring_alg, der, &rng) {
                let public = PublicKey::new(alg, kp.public_key().as_ref().to_vec());
                return Ok(SigningKey { inner: Signer::Ec(kp), public });
            }
        }
        let kp = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| JwtError::Key(format!("not an EC P-256/P-384 or RSA key: {e}")))?;
        Ok(Self::rsa(kp))
    }

    fn rsa(kp: RsaKeyPair) -> SigningKey {
        let public = PublicKey::new(Alg::Rs256, kp.public_key().as_ref().to_vec());
        SigningKey { inner: Signer::Rsa(kp), public }
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        let header = json!({"alg": self.public.alg.name(), "kid": self.public.kid});
        let mut out = B64.encode(header.to_string());
        out.push('.');
        out.push_str(&B64.encode(claims.to_string()));
        let rng = SystemRandom::new();
        let sig = match &self.inner {
            Signer::Ec(kp) => kp.sign(&rng, out.as_bytes()).map(|s| s.as_ref().to_vec()),
            Signer::Rsa(kp) => {
                let mut sig = vec![0; kp.public().modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig).map(|()| sig)
            }
        }
        .map_err(|_| JwtError::Key("signing failed".into()))?;
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

impl PublicKey {
    fn new(alg: Alg, raw: Vec<u8>) -> PublicKey {
        let kid = B64.encode(ring::digest::digest(&ring::digest::SHA256, &spki_der(alg, &raw)));
        PublicKey { alg, raw, kid }
    }

    /// Every public key in a PEM text: public keys, certificates' keys, and the public
    /// halves of private keys (upstream's `--service-account-key-file` takes all three).
    pub fn all_from_pem(pem: &str) -> Result<Vec<PublicKey>, JwtError> {
        let mut keys = Vec::new();
        for block in pem_blocks(pem) {
            match block.label.as_str() {
                "PUBLIC KEY" => keys.push(Self::from_spki(&block.der)?),
                "RSA PUBLIC KEY" => keys.push(PublicKey::new(Alg::Rs256, block.der)),
                "CERTIFICATE" => {
                    let (_, cert) = x509_parser::parse_x509_certificate(&block.der)
                        .map_err(|e| JwtError::Key(format!("certificate: {e}")))?;
                    keys.push(Self::from_spki(cert.public_key().raw)?);
                }
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                    let text = format!(
                        "-----BEGIN {0}-----\n{1}\n-----END {0}-----\n",
                        block.label,
                        base64::engine::general_purpose::STANDARD.encode(&block.der)
                    );
                    keys.push(SigningKey::from_pem(&text)?.public);
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            return Err(JwtError::Key("no public key in PEM".into()));
        }
        Ok(keys)
    }

    /// A key of a JSON Web Key Set (an OIDC issuer's): RSA (`n`, `e`) as RS256, EC
    /// P-256/P-384 (`x`, `y`) as ES256/ES384; `kid` is the JWK's own when it has one.
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey, JwtError> {
        let field = |k: &str| -> Result<Vec<u8>, JwtError> {
            let v = jwk
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| JwtError::Key(format!("JWK has no {k}")))?;
            B64.decode(v.trim_end_matches('='))
                .map_err(|_| JwtError::Key(format!("JWK {k} is not base64url")))
        };
        let mut key = match jwk.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                let int = |b: Vec<u8>| {
                    let b: Vec<u8> = b.into_iter().skip_while(|x| *x == 0).collect();
                    let pad = b.first().is_some_and(|x| x & 0x80 != 0);
                    der(0x02, &[if pad { &[0u8][..] } else { &[] }, &b].concat())
                };
                let pkcs1 = der(0x30, &[int(field("n")?), int(field("e")?)].concat());
                PublicKey::new(Alg::Rs256, pkcs1)
            }
            Some("EC") => {
                let (alg, len) = match jwk.get("crv").and_then(Value::as_str) {
                    Some("P-256") => (Alg::Es256, 32),
                    Some("P-384") => (Alg::Es384, 48),
                    _ => return Err(JwtError::Key("EC keys must be on P-256 or P-384".into())),
                };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != len || y.len() != len {
                    return Err(JwtError::Key("EC key coordinates have the wrong length".into()));
                }
                PublicKey::new(alg, [&[4u8][..], &x, &y].concat())
            }
            _ => return Err(JwtError::Key("JWK kty must be RSA or EC".into())),
        };
        if let Some(kid) = jwk.get("kid").and_then(Value::as_str) {
            key.kid = kid.to_string();
        }
        Ok(key)
    }

    fn from_spki(der: &[u8]) -> Result<PublicKey, JwtError> {
        use x509_parser::prelude::FromDer as _;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| JwtError::Key(format!("public key: {e}")))?;
        let oid = spki.algorithm.algorithm.as_bytes();
        let data = spki.subject_public_key.data.to_vec();
        if oid == OID_RSA {
            return Ok(PublicKey::new(Alg::Rs256, data));
        }
        if oid == OID_EC {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            return match curve.as_ref().map(|c| c.as_bytes()) {
                Some(c) if c == OID_P256 => Ok(PublicKey::new(Alg::Es256, data)),
                Some(c) if c == OID_P384 => Ok(PublicKey::new(Alg::Es384, data)),
                _ => Err(JwtError::Key("EC keys must be on P-256 or P-384".into())),
            };
        }
        Err(JwtError::Key("public keys must be RSA or EC".into()))
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, &self.raw).verify(message, sig).is_ok()
    }

    /// The key as a JSON Web Key (for `/openid/v1/jwks`).
    pub fn jwk(&self) -> Value {
        match self.alg {
            Alg::Es256 | Alg::Es384 => {
                let n = (self.raw.len() - 1) / 2;
                let crv = if self.alg == Alg::Es256 { "P-256" } else { "P-384" };
                json!({"use": "sig", "kty": "EC", "kid": self.kid, "crv": crv, "alg": self.alg.name(),
                    "x": B64.encode(&self.raw[1..=n]), "y": B64.encode(&self.raw[1 + n..])})
            }
            Alg::Rs256 => {
                let (n, e) = rsa_components(&self.raw).unwrap_or_default();
                json!({"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                    "n": B64.encode(n), "e": B64.encode(e)})
            }
        }
    }
}

/// The claims of a token signed by one of `keys`.
pub fn verify(token: &str, keys: &[PublicKey]) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not a compact JWS"));
    };
    let header: Value = decode_part(h)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let sig = B64.decode(s).map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let signed = &token[..h.len() + 1 + p.len()];
    let kid = header.get("kid").and_then(Value::as_str);
    let ok = keys
        .iter()
        .filter(|k| k.alg.name() == alg && kid.is_none_or(|kid| kid.is_empty() || kid == k.kid))
        .any(|k| k.verify(signed.as_bytes(), &sig));
    if !ok {
        return Err(JwtError::BadSignature);
    }
    decode_part(p)
}

/// The claims of a JWS without checking its signature (to route it to its issuer).
pub fn peek_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, p) = (parts.next()?, parts.next()?);
    parts.next()?;
    decode_part(p).ok()
}

fn decode_part(part: &str) -> Result<Value, JwtError> {
    let bytes = B64.decode(part).map_err(|_| JwtError::Malformed("part is not base64url"))?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed("part is not JSON"))?;
    if v.is_object() { Ok(v) } else { Err(JwtError::Malformed("part is not a JSON object")) }
}

struct PemBlock {
    label: String,
    der: Vec<u8>,
}

fn pem_blocks(pem: &str) -> Vec<PemBlock> {
    let mut out = Vec::new();
    let mut lines = pem.lines();
    while let Some(line) = lines.next() {
        let Some(label) =
            line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let body: String = lines.by_ref().take_while(|l| l.trim() != end).map(str::trim).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            out.push(PemBlock { label: label.to_string(), der });
        }
    }
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// The SubjectPublicKeyInfo DER of a key (what upstream hashes into `kid`).
fn spki_der(alg: Alg, raw: &[u8]) -> Vec<u8> {
    let algorithm = match alg {
        Alg::Es256 => [der(0x06, OID_EC), der(0x06, OID_P256)].concat(),
        Alg::Es384 => [der(0x06, OID_EC), der(0x06, OID_P384)].concat(),
        Alg::Rs256 => [der(0x06, OID_RSA), vec![0x05, 0x00]].concat(),
    };
    let bits = [&[0u8][..], raw].concat();
    der(0x30, &[der(0x30, &algorithm), der(0x03, &bits)].concat())
}

/// A SEC1 `EC PRIVATE KEY` wrapped as PKCS#8 (what ring reads).
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, JwtError> {
    let curve = if find(sec1, OID_P256) {
        OID_P256
    } else if find(sec1, OID_P384) {
        OID_P384
    } else {
        return Err(JwtError::Key("EC keys must be on P-256 or P-384".into()));
    };
    let algorithm = der(0x30, &[der(0x06, OID_EC), der(0x06, curve)].concat());
    Ok(der(0x30, &[vec![0x02, 0x01, 0x00], algorithm, der(0x04, sec1)].concat()))
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Modulus and exponent of a PKCS#1 RSAPublicKey (leading zero bytes dropped).
fn rsa_components(der_bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (seq, _) = read_tlv(der_bytes, 0x30)?;
    let (n, rest) = read_tlv(seq, 0x02)?;
    let (e, _) = read_tlv(rest, 0x02)?;
    let strip = |b: &[u8]| b.iter().copied().skip_while(|x| *x == 0).collect::<Vec<u8>>();
    Some((strip(n), strip(e)))
}

fn read_tlv(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *b.first()? != tag {
        return None;
    }
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        let len = b.get(2..2 + n)?.iter().fold(0usize, |acc, x| (acc << 8) | *x as usize);
        (len, 2 + n)
    };
    let body = b.get(head..head + len)?;
    Some((body, &b[head + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_key() -> SigningKey {
        let kp = rcgen::KeyPair::generate().unwrap();
        SigningKey::from_pem(&kp.serialize_pem()).unwrap()
    }

    #[test]
    fn signed_tokens_verify_with_the_public_key_only() {
        let key = ec_key();
        let token = key.sign(&json!({"sub": "x"})).unwrap();
        let claims = verify(&token, std::slice::from_ref(&key.public)).unwrap();
        assert_eq!(claims["sub"], "x");
        let other = ec_key();
        assert_eq!(
            verify(&token, std::slice::from_ref(&other.public)),
            Err(JwtError::BadSignature)
        );
        // A changed payload fails.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(json!({"sub": "admin"}).to_string());
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), &[key.public]), Err(JwtError::BadSignature));
        assert!(verify("a.b", &[]).is_err());
    }

    #[test]
    fn public_keys_load_from_spki_pem_and_match_the_private_key() {
        let kp = rcgen::KeyPair::generate().unwrap();
        let key = SigningKey::from_pem(&kp.serialize_pem()).unwrap();
        let public = PublicKey::all_from_pem(&kp.public_key_pem()).unwrap();
        assert_eq!(public[0].kid, key.public.kid, "kid is the SPKI hash either way");
        assert_eq!(
            spki_der(Alg::Es256, &key.public.raw),
            rcgen::PublicKeyData::subject_public_key_info(&kp)
        );
        let token = key.sign(&json!({"a": 1})).unwrap();
        assert!(verify(&token, &public).is_ok());
        let jwk = key.public.jwk();
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
        assert_eq!(B64.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn jwks_keys_verify_what_their_private_keys_signed() {
        for key in [ec_key(), SigningKey::from_pem(RSA_KEY).unwrap()] {
            let mut jwk = key.public.jwk();
            jwk["kid"] = json!("issuer-key-1");
            let public = PublicKey::from_jwk(&jwk).unwrap();
            assert_eq!((public.alg, public.kid.as_str()), (key.public.alg, "issuer-key-1"));
            let token = key.sign(&json!({"sub": "x"})).unwrap();
            // The token names the signer's own kid; a key set with another kid is not used.
            assert!(verify(&token, std::slice::from_ref(&public)).is_err());
            let mut same = public.clone();
            same.kid = key.public.kid.clone();
            assert!(verify(&token, &[same]).is_ok());
        }
        assert!(PublicKey::from_jwk(&json!({"kty": "oct", "k": "AAAA"})).is_err());
        assert!(
            PublicKey::from_jwk(&json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))
                .is_err()
        );
    }

    #[test]
    fn der_lengths_use_the_long_form_past_127() {
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (body, rest) = read_tlv(&long, 0x04).unwrap();
        assert_eq!((body.len(), rest.len()), (300, 0));
    }

    /// Throwaway keys made with openssl for these tests (PKCS#8 RSA, SPKI, SEC1 EC).
    const RSA_KEY: &str = include_str!("testdata/rsa.key");
    const RSA_PUB: &str = include_str!("testdata/rsa.pub");
    const SEC1_KEY: &str = include_str!("testdata/sec1.key");

    #[test]
    fn openssl_keys_sign_and_verify_as_upstream_reads_them() {
        let rsa = SigningKey::from_pem(RSA_KEY).unwrap();
        assert_eq!(rsa.public.alg, Alg::Rs256);
        let public = PublicKey::all_from_pem(RSA_PUB).unwrap();
        assert_eq!(public[0].kid, rsa.public.kid);
        let token = rsa.sign(&json!({"iss": "x"})).unwrap();
        assert_eq!(verify(&token, &public).unwrap()["iss"], "x");
        let jwk = rsa.public.jwk();
        assert_eq!(B64.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256);
        assert_eq!(jwk["e"], "AQAB");
        let ec = SigningKey::from_pem(SEC1_KEY).unwrap();
        assert_eq!(ec.public.alg, Alg::Es256);
        let token = ec.sign(&json!({})).unwrap();
        assert!(verify(&token, &PublicKey::all_from_pem(SEC1_KEY).unwrap()).is_ok());
        assert!(verify(&token, &public).is_err(), "an RS256 key does not verify ES256");
    }
}
