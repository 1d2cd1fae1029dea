//! Decrypting Giosg's encrypted chats (the scheme of Giosg's `giosg_crypter`, below).
//!
//! 1. The chat's `encrypted_symmetric_key` (standard base64, maybe wrapped) is RSA-OAEP with
//!    SHA-1 and MGF1-SHA1, empty label; it unwraps to
//!    `{"hmacKey":{"hmacKeyString":…},"aesKeyString":…}` with URL-safe base64 keys of 32 bytes.
//! 2. Each `encrypted_message` (standard base64) is `header(5) ‖ IV(16) ‖ AES-256-CBC
//!    ciphertext (PKCS#7) ‖ HMAC-SHA1 tag(20)`; the tag covers header ‖ IV ‖ ciphertext and is
//!    enforced. The header (`00000` or `0x00` + key hash) is ignored.
//!
//! Private keys load from PEM: PKCS#1 (`RSA PRIVATE KEY`) plain or with OpenSSL's legacy
//! `Proc-Type: 4,ENCRYPTED` (EVP_BytesToKey with MD5 and one iteration; DES-EDE3-CBC, DES-CBC or
//! AES-128/192/256-CBC), and PKCS#8 (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY` with PBES2).

use aes::{Aes128, Aes192, Aes256};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;

/// Why a private key could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No PEM private key block in the text.
    #[error(
        "no PEM private key found (expected `BEGIN RSA PRIVATE KEY`, `BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED PRIVATE KEY`)"
    )]
    NoKey,
    /// The key is encrypted and no passphrase was given.
    #[error("the private key is encrypted: set private_key_passphrase")]
    PassphraseRequired,
    /// The passphrase does not open the key (or the key is damaged).
    #[error("cannot decrypt the private key: wrong passphrase or damaged key")]
    BadPassphrase,
    /// A legacy PEM cipher we do not implement.
    #[error(
        "unsupported PEM encryption `{0}` (supported: DES-EDE3-CBC, DES-CBC, AES-128-CBC, AES-192-CBC, AES-256-CBC)"
    )]
    UnsupportedCipher(String),
    /// The key does not parse.
    #[error("invalid private key: {0}")]
    Invalid(String),
}

/// Why one encrypted value could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Not base64.
    #[error("{0} is not valid base64")]
    Base64(&'static str),
    /// RSA-OAEP unwrapping failed: usually the wrong private key.
    #[error("cannot unwrap the chat key with the configured private key (wrong key?)")]
    Unwrap,
    /// The unwrapped key document is not what Giosg writes.
    #[error("unexpected symmetric key document: {0}")]
    KeyDocument(String),
    /// Too short to hold header, IV, one block and the tag.
    #[error("ciphertext too short ({0} bytes)")]
    TooShort(usize),
    /// The HMAC-SHA1 tag does not verify.
    #[error("HMAC-SHA1 tag mismatch: the ciphertext was altered or belongs to another key")]
    BadTag,
    /// AES-CBC padding is wrong.
    #[error("AES-256-CBC decryption failed (bad padding)")]
    Decrypt,
    /// The plaintext is not UTF-8.
    #[error("decrypted text is not UTF-8")]
    Utf8,
}

/// Base64 that accepts padding or none.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Loads an RSA private key from PEM text.
///
/// # Errors
/// See [`KeyError`].
pub fn load_private_key(pem: &str, passphrase: Option<&str>) -> Result<RsaPrivateKey, KeyError> {
    let passphrase = passphrase.filter(|p| !p.is_empty());
    if let Some(block) = pem_block(pem, "ENCRYPTED PRIVATE KEY") {
        let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
        return RsaPrivateKey::from_pkcs8_encrypted_pem(&block, pass.as_bytes())
            .map_err(|_| KeyError::BadPassphrase);
    }
    if let Some(block) = pem_block(pem, "PRIVATE KEY") {
        return RsaPrivateKey::from_pkcs8_pem(&block).map_err(|e| KeyError::Invalid(e.to_string()));
    }
    let Some(block) = pem_block(pem, "RSA PRIVATE KEY") else {
        return Err(KeyError::NoKey);
    };
    let (headers, body) = split_pem(&block);
    let der = STANDARD
        .decode(strip_ws(&body))
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    let encrypted = headers
        .iter()
        .any(|(k, v)| k == "Proc-Type" && v.contains("ENCRYPTED"));
    if !encrypted {
        return RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| KeyError::Invalid(e.to_string()));
    }
    let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
    let dek = headers
        .iter()
        .find(|(k, _)| k == "DEK-Info")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| KeyError::Invalid("encrypted PEM without DEK-Info".into()))?;
    let (cipher, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| KeyError::Invalid(format!("bad DEK-Info `{dek}`")))?;
    let iv = hex_decode(iv_hex.trim())
        .ok_or_else(|| KeyError::Invalid(format!("bad DEK-Info IV `{iv_hex}`")))?;
    let cipher = cipher.trim().to_ascii_uppercase();
    let key_len = match cipher.as_str() {
        "DES-EDE3-CBC" | "AES-192-CBC" => 24,
        "DES-CBC" => 8,
        "AES-128-CBC" => 16,
        "AES-256-CBC" => 32,
        _ => return Err(KeyError::UnsupportedCipher(cipher)),
    };
    let salt = iv
        .get(..8)
        .ok_or_else(|| KeyError::Invalid("DEK-Info IV too short".into()))?;
    let key = evp_bytes_to_key(pass.as_bytes(), salt, key_len);
    let plain = match cipher.as_str() {
        "DES-EDE3-CBC" => cbc_decrypt::<des::TdesEde3>(&key, &iv, &der),
        "DES-CBC" => cbc_decrypt::<des::Des>(&key, &iv, &der),
        "AES-128-CBC" => cbc_decrypt::<Aes128>(&key, &iv, &der),
        "AES-192-CBC" => cbc_decrypt::<Aes192>(&key, &iv, &der),
        _ => cbc_decrypt::<Aes256>(&key, &iv, &der),
    }
    .ok_or(KeyError::BadPassphrase)?;
    RsaPrivateKey::from_pkcs1_der(&plain).map_err(|_| KeyError::BadPassphrase)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
where
    C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .ok()
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration (legacy PEM encryption).
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(pass);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The first PEM block with this label, BEGIN and END lines included.
fn pem_block(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(text[start..stop].replace("\r\n", "\n"))
}

/// Splits a PEM block into RFC 1421 headers and the base64 body.
fn split_pem(block: &str) -> (Vec<(String, String)>, String) {
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line.starts_with("-----") || line.is_empty() {
            continue;
        }
        match line.split_once(':') {
            Some((k, v))
                if !line.contains(' ')
                    || k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            _ => body.push_str(line),
        }
    }
    (headers, body)
}

/// The symmetric keys of one chat (or one visitor's data).
#[derive(Clone)]
pub struct ChatKeys {
    aes: [u8; 32],
    hmac: Vec<u8>,
}

impl std::fmt::Debug for ChatKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatKeys([redacted])")
    }
}

impl ChatKeys {
    /// Unwraps an `encrypted_symmetric_key` with the private key.
    ///
    /// # Errors
    /// Bad base64, the wrong key, or an unexpected key document.
    pub fn unwrap(
        private: &RsaPrivateKey,
        encrypted_symmetric_key: &str,
    ) -> Result<Self, CryptoError> {
        let wrapped = STD_LENIENT
            .decode(strip_ws(encrypted_symmetric_key))
            .map_err(|_| CryptoError::Base64("encrypted_symmetric_key"))?;
        let doc = private
            .decrypt(Oaep::new::<Sha1>(), &wrapped)
            .map_err(|_| CryptoError::Unwrap)?;
        let v: serde_json::Value = serde_json::from_slice(&doc)
            .map_err(|e| CryptoError::KeyDocument(format!("not JSON: {e}")))?;
        let aes_s = v
            .get("aesKeyString")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CryptoError::KeyDocument("no aesKeyString".into()))?;
        let hmac_s = v
            .pointer("/hmacKey/hmacKeyString")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CryptoError::KeyDocument("no hmacKey.hmacKeyString".into()))?;
        let aes = decode_key(aes_s)?;
        let aes: [u8; 32] = aes.try_into().map_err(|k: Vec<u8>| {
            CryptoError::KeyDocument(format!("AES key is {} bytes, want 32", k.len()))
        })?;
        let hmac = decode_key(hmac_s)?;
        Ok(Self { aes, hmac })
    }

    /// Verifies and decrypts one `encrypted_message` / `encrypted_value`.
    ///
    /// # Errors
    /// See [`CryptoError`].
    pub fn open(&self, encrypted: &str) -> Result<String, CryptoError> {
        let raw = STD_LENIENT
            .decode(strip_ws(encrypted))
            .map_err(|_| CryptoError::Base64("encrypted_message"))?;
        if raw.len() < 5 + 16 + 16 + 20 {
            return Err(CryptoError::TooShort(raw.len()));
        }
        let (signed, tag) = raw.split_at(raw.len() - 20);
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.hmac).map_err(|_| CryptoError::BadTag)?;
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| CryptoError::BadTag)?;
        let (iv, ct) = signed[5..].split_at(16);
        let plain = cbc::Decryptor::<Aes256>::new_from_slices(&self.aes, iv)
            .map_err(|_| CryptoError::Decrypt)?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Utf8)
    }
}

fn decode_key(s: &str) -> Result<Vec<u8>, CryptoError> {
    let s = strip_ws(s);
    URL_LENIENT
        .decode(&s)
        .or_else(|_| STD_LENIENT.decode(&s))
        .map_err(|_| CryptoError::Base64("key string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -aes-128-cbc -P -md md5 -S 0102030405060708 -pass pass:secret -nosalt` style:
        // two MD5 rounds concatenated; the first 16 bytes are MD5(pass ‖ salt).
        let k = evp_bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 24);
        let mut h = Md5::new();
        h.update(b"secret");
        h.update([1u8, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&k[..16], h.finalize().as_slice());
        assert_eq!(k.len(), 24);
    }

    #[test]
    fn missing_and_foreign_pem() {
        assert_eq!(load_private_key("hello", None).err(), Some(KeyError::NoKey));
        assert!(hex_decode("0g").is_none());
    }
}
