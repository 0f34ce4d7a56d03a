//! API keys. The engine stores only a digest of a key (the owner of what the key made),
//! never the key itself.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// The owner id a key maps to: the first 16 bytes of its SHA-256, in hex.
pub fn owner_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random key, shaped like FastRouter's (`sk-v1-...`) but marked local.
pub fn generate_key() -> Secret {
    let a: u128 = rand::rng().random();
    let b: u64 = rand::rng().random();
    Secret::new(format!("sk-local-{a:032x}{b:016x}"))
}

/// The key of an `Authorization: Bearer <key>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_differ_per_key_and_hide_it() {
        let a = owner_of("sk-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, owner_of("sk-b"));
        assert!(!a.contains("sk-a"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer sk-1"), Some("sk-1"));
        assert_eq!(bearer("bearer   sk-1 "), Some("sk-1"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
