//! Giosg's chat encryption, the sending side (scheme: `talkhouse_sources::giosg::crypto`).
//!
//! Each encrypted chat has a random AES-256 key and an HMAC-SHA1 key, put in a small JSON
//! document that is wrapped with the organisation's RSA public key (OAEP, SHA-1, MGF1-SHA1, empty
//! label): the chat's `encrypted_symmetric_key`. Each message is `header(5) ‖ IV(16) ‖
//! AES-256-CBC(PKCS#7) ‖ HMAC-SHA1(header ‖ IV ‖ ciphertext)`, base64. Everything is derived
//! from the seed, so the same seed gives byte-identical ciphertexts.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};

/// The organisation's RSA private key (PKCS#1 PEM, unencrypted, 2048 bits). Emulator keys are
/// public test fixtures, never secrets.
pub const PRIVATE_KEY_PEM: &str = include_str!("keys/org.pem");
/// The same key, legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED`, DES-EDE3-CBC), passphrase
/// [`KEY_PASSPHRASE`].
pub const PRIVATE_KEY_PEM_DES3: &str = include_str!("keys/org.des3.pem");
/// The same key, legacy OpenSSL encryption with AES-256-CBC, passphrase [`KEY_PASSPHRASE`].
pub const PRIVATE_KEY_PEM_AES256: &str = include_str!("keys/org.aes256.pem");
/// The same key as unencrypted PKCS#8.
pub const PRIVATE_KEY_PKCS8_PEM: &str = include_str!("keys/org.pkcs8.pem");
/// The same key as encrypted PKCS#8 (PBES2, PBKDF2-SHA256, AES-256-CBC), passphrase
/// [`KEY_PASSPHRASE`].
pub const PRIVATE_KEY_PKCS8_ENCRYPTED_PEM: &str = include_str!("keys/org.pkcs8.enc.pem");
/// Passphrase of the encrypted key files.
pub const KEY_PASSPHRASE: &str = "talkhouse";
/// A different RSA key (PKCS#1): the "wrong key" of tests.
pub const WRONG_PRIVATE_KEY_PEM: &str = include_str!("keys/wrong.pem");

/// Which header the emulator writes before the IV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// ASCII `"00000"` (2023 data; base64 starts with `MDAwMDA`).
    Zeros,
    /// `0x00` and the first four bytes of SHA-1 of the AES key (2019 data).
    KeyHash,
}

/// One chat's (or visitor's) symmetric keys and their RSA-wrapped form.
#[derive(Debug, Clone)]
pub struct ChatKey {
    /// AES-256 key.
    pub aes: [u8; 32],
    /// HMAC-SHA1 key.
    pub hmac: [u8; 32],
    /// `encrypted_symmetric_key`: the key JSON wrapped with RSA-OAEP-SHA1, standard base64.
    pub wrapped: String,
}

/// A seeded random source with the `rand_core` 0.6 traits that `rsa` 0.9 asks for, so OAEP
/// padding (which is randomised) is reproducible from the seed.
struct SeededRng(rand::rngs::StdRng);

impl rsa::rand_core::RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.0.random()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.random()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for SeededRng {}

/// The organisation's public key, from [`PRIVATE_KEY_PEM`].
///
/// # Errors
/// Only if the embedded fixture were broken.
pub fn org_public_key() -> Result<RsaPublicKey, String> {
    let private = RsaPrivateKey::from_pkcs1_pem(PRIVATE_KEY_PEM).map_err(|e| e.to_string())?;
    Ok(RsaPublicKey::from(&private))
}

impl ChatKey {
    /// Keys derived from `seed`, wrapped with `public`.
    pub fn derive(public: &RsaPublicKey, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut aes = [0u8; 32];
        let mut hmac = [0u8; 32];
        rng.fill(&mut aes);
        rng.fill(&mut hmac);
        // Written as Giosg's Python service writes it (`json.dumps`, spaces after separators).
        let json = format!(
            r#"{{"hmacKey": {{"hmacKeyString": "{}", "size": 256}}, "aesKeyString": "{}", "mode": "CBC", "size": 256}}"#,
            URL_SAFE_NO_PAD.encode(hmac),
            URL_SAFE_NO_PAD.encode(aes)
        );
        let mut oaep_rng = SeededRng(rand::rngs::StdRng::seed_from_u64(seed ^ 0x0a_e9));
        // 2048-bit OAEP-SHA1 takes up to 214 bytes; the key JSON is about 150.
        let wrapped = public
            .encrypt(&mut oaep_rng, Oaep::new::<Sha1>(), json.as_bytes())
            .map(|b| STANDARD.encode(b))
            .unwrap_or_default();
        Self { aes, hmac, wrapped }
    }

    /// Encrypts one text as Giosg stores it (`encrypted_message`, `encrypted_value`). The IV is
    /// derived from `iv_seed` (the record id), so answers are stable; `corrupt` flips a bit of the
    /// HMAC tag.
    pub fn seal(&self, plaintext: &str, iv_seed: &str, header: Header, corrupt: bool) -> String {
        let mut out = match header {
            Header::Zeros => b"00000".to_vec(),
            Header::KeyHash => {
                let h = Sha1::digest(self.aes);
                vec![0, h[0], h[1], h[2], h[3]]
            }
        };
        let digest = Sha1::digest(iv_seed.as_bytes());
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&digest[..16]);
        let ct = cbc::Encryptor::<Aes256>::new(&self.aes.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        let tag = match Hmac::<Sha1>::new_from_slice(&self.hmac) {
            Ok(mut mac) => {
                mac.update(&out);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0; 20],
        };
        out.extend_from_slice(&tag);
        if corrupt && let Some(last) = out.last_mut() {
            *last ^= 0x01;
        }
        STANDARD.encode(out)
    }
}

/// SHA-1 of a text as lower-case hex (`hashed_name` of tags, digests in ground truth).
pub fn sha1_hex(text: &str) -> String {
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
