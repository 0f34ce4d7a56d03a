//! TLS for the crates that speak HTTPS (the client, the engine's upstream calls): rustls needs
//! a process-wide crypto provider; ring builds with a C compiler alone.

/// Installs ring as the process's crypto provider, once (later calls, and a provider already
/// installed by someone else, change nothing).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
