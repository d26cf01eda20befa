//! The local CA and service certificate against the real store, checked with openssl(1).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use mistborn_core::Mistborn;

use common::engines;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl(1) is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn service_certificate_chains_to_the_ca_and_renews_near_expiry() {
    for env in engines().await {
        let m = Mistborn::open(env.config()).await.unwrap();
        let written = m.tls().write_files(NOW).await.unwrap();
        assert!(written.issued, "the first certificate is new");
        assert!(
            !m.tls().write_files(NOW).await.unwrap().issued,
            "nothing is issued while the certificate is valid"
        );
        let files = written.files;
        let first = m.tls().ensure(NOW).await.unwrap();
        assert_eq!(
            std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (ca, cert) = (files.ca.to_str().unwrap(), files.cert.to_str().unwrap());
        // Verify at a time inside the validity window (the test's NOW is in the future).
        let verify_at = (NOW + DAY).to_string();
        let ok = openssl(&[
            "verify",
            "-attime",
            &verify_at,
            "-purpose",
            "sslserver",
            "-CAfile",
            ca,
            cert,
        ]);
        assert!(ok.contains(": OK"), "{ok}");
        let text = openssl(&["x509", "-in", cert, "-noout", "-text"]);
        assert!(text.contains("DNS:*.mistborn"), "{text}");
        assert!(text.contains("DNS:home.mistborn"), "{text}");
        let host = openssl(&[
            "verify",
            "-attime",
            &verify_at,
            "-verify_hostname",
            "home.mistborn",
            "-CAfile",
            ca,
            cert,
        ]);
        assert!(host.contains(": OK"), "{host}");
        let ca_text = openssl(&["x509", "-in", ca, "-noout", "-text"]);
        assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
        assert_eq!(first.not_after, NOW + 397 * DAY);

        // Within validity nothing changes; 31 days before expiry neither; 29 days before, a new one.
        assert_eq!(m.tls().ensure(NOW + DAY).await.unwrap(), first);
        assert_eq!(
            m.tls().ensure(first.not_after - 31 * DAY).await.unwrap(),
            first,
            "{}",
            env.engine
        );
        let renewed = m.tls().ensure(first.not_after - 29 * DAY).await.unwrap();
        assert_ne!(renewed.cert_pem, first.cert_pem);
        assert_eq!(
            renewed.ca_pem, first.ca_pem,
            "the CA devices imported stays"
        );
        assert!(renewed.not_after > first.not_after);

        // The renewed certificate still chains to the same CA, also after a restart.
        m.close().await;
        let m = Mistborn::open(env.config()).await.unwrap();
        let later = first.not_after - 29 * DAY;
        let written = m.tls().write_files(later).await.unwrap();
        assert!(
            !written.issued,
            "the renewed certificate is kept after a restart"
        );
        let files = written.files;
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            renewed.cert_pem
        );
        let ok = openssl(&[
            "verify",
            "-attime",
            &(later + DAY).to_string(),
            "-CAfile",
            files.ca.to_str().unwrap(),
            files.cert.to_str().unwrap(),
        ]);
        assert!(ok.contains(": OK"), "{ok}");
        m.close().await;
    }
}
