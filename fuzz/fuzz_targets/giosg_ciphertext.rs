//! Giosg encryption: an `encrypted_message` opened with real keys, an
//! `encrypted_symmetric_key` unwrapped with the private key, and a PEM key file.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;
use talkhouse_sources::giosg::{ChatKeys, load_private_key};

const PEM: &str = include_str!("../../crates/talkhouse-emulator/src/giosg/keys/org.pem");

static KEYS: LazyLock<(RsaPrivateKey, ChatKeys)> = LazyLock::new(|| {
    let private = load_private_key(PEM, None).expect("the emulator's key");
    let b64 = base64::engine::general_purpose::STANDARD;
    let document = serde_json::json!({
        "aesKeyString": b64.encode([7u8; 32]),
        "hmacKey": {"hmacKeyString": b64.encode([9u8; 32])},
    });
    let wrapped = private
        .to_public_key()
        .encrypt(&mut rsa::rand_core::OsRng, Oaep::new::<Sha1>(), document.to_string().as_bytes())
        .expect("RSA-OAEP encrypts");
    let keys = ChatKeys::unwrap(&private, &b64.encode(wrapped)).expect("keys unwrap");
    (private, keys)
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (private, keys) = &*KEYS;
    let _ = talkhouse_sources::giosg::inputs::ciphertext(keys, data);
    let _ = ChatKeys::unwrap(private, &String::from_utf8_lossy(data));
    let _ = load_private_key(&String::from_utf8_lossy(data), None);
});
