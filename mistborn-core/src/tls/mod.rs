//! The local certificate authority and the `*.<suffix>` service certificate, made with rcgen. The CA
//! (ten years) is what devices import once (`GET /api/v1/tls/ca.pem`); the service certificate
//! (397 days, the longest browsers accept) is renewed when fewer than 30 days remain. Keys are sealed
//! in the store like every other secret; PEM files for the proxy are written into the data dir.

mod authority;
mod renewal;

pub use authority::{CertBundle, Tls, TlsFiles, WrittenCerts};
pub use renewal::{LEAF_VALIDITY_DAYS, RENEW_BEFORE_DAYS, needs_renewal};
