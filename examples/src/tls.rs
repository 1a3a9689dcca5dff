//! TLS for STARTTLS and STLS.

use std::path::Path;
use std::sync::Arc;

/// The server's TLS configuration: the given certificate chain and key
/// (PEM), or a self-signed certificate for `names` kept in `data/tls`.
pub fn server_config(
    data: &Path,
    cert_and_key: Option<(&Path, &Path)>,
    names: &[String],
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match cert_and_key {
        Some((c, k)) => (c.to_owned(), k.to_owned()),
        None => {
            let dir = data.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let mut sans: Vec<String> = names.to_vec();
                sans.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
                let ck = rcgen::generate_simple_self_signed(sans).map_err(|e| e.to_string())?;
                std::fs::write(&c, ck.cert.pem()).map_err(|e| e.to_string())?;
                std::fs::write(&k, ck.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
            }
            (c, k)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(cfg))
}
