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

/// Reads a stored setting straight from the database (as another process would).
async fn setting(url: &str, key: &str) -> Option<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let v = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    v
}

fn openssl_fails(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(!out.status.success(), "openssl {args:?} succeeded");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The CA is limited by name constraints to the Mistborn suffix and the tunnel subnets: a
/// certificate it signs for another domain fails `openssl verify`. A CA issued without them (an
/// older install) is replaced on the next use, and so is the service certificate it signed.
#[tokio::test]
async fn the_ca_vouches_only_for_the_mistborn_suffix() {
    for env in engines().await {
        let config = env.config();
        let url = config.effective_database_url();
        let m = Mistborn::open(config.clone()).await.unwrap();
        let files = m.tls().write_files(NOW).await.unwrap().files;
        let (ca, cert) = (files.ca.to_str().unwrap(), files.cert.to_str().unwrap());
        let text = openssl(&["x509", "-in", ca, "-noout", "-text"]);
        let nc = text
            .split("X509v3 Name Constraints: critical")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: no name constraints:\n{text}", env.engine));
        let permitted: Vec<&str> = nc
            .lines()
            .skip_while(|l| !l.contains("Permitted:"))
            .skip(1)
            .take(3)
            .map(str::trim)
            .collect();
        assert_eq!(
            permitted,
            [
                "DNS:mistborn",
                "IP:10.15.91.0/255.255.255.0",
                "IP:FD15:91:0:0:0:0:0:0/FFFF:FFFF:FFFF:FFFF:0:0:0:0"
            ],
            "{text}"
        );
        let at = (NOW + DAY).to_string();
        let ok = openssl(&["verify", "-attime", &at, "-CAfile", ca, cert]);
        assert!(ok.contains(": OK"), "{ok}");

        // Sign certificates with the CA's own key, as someone holding it could.
        let sealed = setting(&url, "tls.ca_key").await.unwrap();
        let secrets =
            mistborn_core::crypto::SecretBox::open_or_create(&config.data_dir.join("secret.key"))
                .unwrap();
        let dir = env.dir.path();
        let ca_key = dir.join("ca.key");
        std::fs::write(&ca_key, secrets.open(&sealed).unwrap()).unwrap();
        let sign = |name: &str, san: &str| {
            let (key, csr, out) = (
                dir.join(format!("{name}.key")),
                dir.join(format!("{name}.csr")),
                dir.join(format!("{name}.pem")),
            );
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(&ext, format!("subjectAltName={san}\n")).unwrap();
            openssl(&[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                key.to_str().unwrap(),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                csr.to_str().unwrap(),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                ca,
                "-CAkey",
                ca_key.to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                ext.to_str().unwrap(),
                "-out",
                out.to_str().unwrap(),
            ]);
            out
        };
        let inside = sign("cloud.mistborn", "DNS:cloud.mistborn");
        let ok = openssl(&[
            "verify",
            "-attime",
            &at,
            "-CAfile",
            ca,
            inside.to_str().unwrap(),
        ]);
        assert!(ok.contains(": OK"), "{ok}");
        for (name, san) in [
            ("www.example.com", "DNS:www.example.com"),
            ("mistborn.example.com", "DNS:mistborn.example.com"),
            ("public-ip", "IP:93.184.216.34"),
        ] {
            let outside = sign(name, san);
            let err = openssl_fails(&[
                "verify",
                "-attime",
                &at,
                "-CAfile",
                ca,
                outside.to_str().unwrap(),
            ]);
            assert!(
                err.contains("permitted subtree violation"),
                "{}: {name}: {err}",
                env.engine
            );
        }
        m.close().await;

        // An install whose CA predates the constraints: a new CA and service certificate.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM settings WHERE key = 'tls.ca_scope'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let old_ca = std::fs::read_to_string(ca).unwrap();
        let old_cert = std::fs::read_to_string(cert).unwrap();
        let m = Mistborn::open(config.clone()).await.unwrap();
        let written = m.tls().write_files(NOW).await.unwrap();
        assert!(written.issued, "{}: a new service certificate", env.engine);
        let new_ca = std::fs::read_to_string(ca).unwrap();
        assert_ne!(new_ca, old_ca, "{}: a new CA", env.engine);
        assert_ne!(std::fs::read_to_string(cert).unwrap(), old_cert);
        let ok = openssl(&["verify", "-attime", &at, "-CAfile", ca, cert]);
        assert!(ok.contains(": OK"), "{ok}");
        assert!(openssl(&["x509", "-in", ca, "-noout", "-text"]).contains("DNS:mistborn"));
        assert!(
            !m.tls().write_files(NOW).await.unwrap().issued,
            "{}: reissued once",
            env.engine
        );
        m.close().await;
    }
}
