//! Picks the TLS crypto provider once per process, before the first HTTPS-capable client is built.
//!
//! reqwest is built with `rustls-no-provider` and rustls with `ring` (a third of aws-lc-rs's build
//! time), so the provider must be installed explicitly; building a client without one panics.

use std::sync::Once;

/// Installs rustls' `ring` provider as the process default. Idempotent; a provider installed
/// earlier by someone else is left in place.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider is already the default, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
