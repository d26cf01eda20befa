//! Creating, storing and renewing the CA and the service certificate.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use time::OffsetDateTime;

use super::renewal::{LEAF_VALIDITY_DAYS, needs_renewal};
use crate::error::{Error, Result};
use crate::mistborn::Mistborn;

const CA_VALIDITY_DAYS: i64 = 3_650;

mod keys {
    pub const CA_NAME: &str = "tls.ca_name";
    pub const CA_KEY: &str = "tls.ca_key";
    pub const CA_CERT: &str = "tls.ca_cert";
    pub const CA_NOT_BEFORE: &str = "tls.ca_not_before";
    /// The name constraints the stored CA was issued with (see `CaScope::text`).
    pub const CA_SCOPE: &str = "tls.ca_scope";
    pub const LEAF_KEY: &str = "tls.leaf_key";
    pub const LEAF_CERT: &str = "tls.leaf_cert";
    pub const LEAF_NOT_AFTER: &str = "tls.leaf_not_after";
    pub const LEAF_NAMES: &str = "tls.leaf_names";
}

/// The certificates in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBundle {
    /// The CA certificate (PEM), for devices to trust.
    pub ca_pem: String,
    /// The service certificate (PEM).
    pub cert_pem: String,
    /// The service key (PEM). Secret.
    pub key_pem: String,
    /// Expiry of the service certificate, Unix seconds.
    pub not_after: i64,
}

/// Where the PEM files for the proxy are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate.
    pub ca: PathBuf,
    /// Service certificate.
    pub cert: PathBuf,
    /// Service key (mode 0600).
    pub key: PathBuf,
}

/// What [`Tls::write_files`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCerts {
    /// Where the PEM files are.
    pub files: TlsFiles,
    /// A new service certificate was issued just now (first use, renewal, changed site names): a
    /// running proxy must reload to serve it.
    pub issued: bool,
}

/// The TLS API of a [`Mistborn`] handle.
#[derive(Debug, Clone, Copy)]
pub struct Tls<'a> {
    pub(crate) m: &'a Mistborn,
}

fn rc(e: rcgen::Error) -> Error {
    Error::Crypto(format!("certificate: {e}"))
}

fn at(unix: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| Error::invalid("time", e.to_string()))
}

/// What the CA may vouch for: host names under the Mistborn suffix and addresses in the tunnel
/// subnets (as X.509 name constraints). A device told to trust the CA then trusts it for nothing
/// else: a certificate it signed for any other domain fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaScope {
    suffix: String,
    subnets: Vec<ipnet::IpNet>,
}

impl CaScope {
    fn of(config: &crate::Config) -> Self {
        Self {
            suffix: config.dns_suffix.to_ascii_lowercase(),
            subnets: vec![
                config.wireguard.subnet_v4.trunc().into(),
                config.wireguard.subnet_v6.trunc().into(),
            ],
        }
    }

    /// Stored beside the CA, so a CA issued with other (or no) constraints is noticed.
    fn text(&self) -> String {
        let mut t = format!("dns:{}", self.suffix);
        for n in &self.subnets {
            t.push_str(&format!(" ip:{n}"));
        }
        t
    }

    fn constraints(&self) -> NameConstraints {
        let mut permitted = vec![GeneralSubtree::DnsName(self.suffix.clone())];
        permitted.extend(self.subnets.iter().map(|n| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(n.addr(), n.prefix_len()))
        }));
        NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        }
    }
}

/// The CA's parameters. Rebuilt identically from its stored name and start time whenever a service
/// certificate is signed, so the issuer name and key identifier always match the CA devices hold.
fn ca_params(name: &str, not_before: i64, scope: &CaScope) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Mistborn");
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.name_constraints = Some(scope.constraints());
    p.not_before = at(not_before)?;
    p.not_after = at(not_before + CA_VALIDITY_DAYS * 86_400)?;
    Ok(p)
}

impl Tls<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.m.store().setting(key).await
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        self.m.store().set_setting(key, value).await
    }

    /// The CA certificate, creating the CA on first use.
    pub async fn ca_pem(&self, now: i64) -> Result<String> {
        Ok(self.ensure(now).await?.ca_pem)
    }

    /// Makes sure a CA and a valid service certificate exist, renewing the latter when it is
    /// within 30 days of expiry; returns what is in force.
    pub async fn ensure(&self, now: i64) -> Result<CertBundle> {
        Ok(self.ensure_reporting(now).await?.0)
    }

    /// [`Tls::ensure`], also saying whether a new service certificate was issued just now.
    async fn ensure_reporting(&self, now: i64) -> Result<(CertBundle, bool)> {
        let (ca_name, ca_not_before, ca_key) = self.ensure_ca(now).await?;
        let ca_pem = self
            .get(keys::CA_CERT)
            .await?
            .ok_or_else(|| Error::Corrupt("the CA certificate is missing".into()))?;
        let names = self.names();
        // The stored names also record which CA signed the certificate: a new CA means a new one.
        let names_text = format!("{} @{ca_name}", names.join(" "));
        if let (Some(cert_pem), Some(sealed), Some(not_after), Some(stored_names)) = (
            self.get(keys::LEAF_CERT).await?,
            self.get(keys::LEAF_KEY).await?,
            self.get(keys::LEAF_NOT_AFTER).await?,
            self.get(keys::LEAF_NAMES).await?,
        ) {
            let not_after: i64 = not_after
                .parse()
                .map_err(|_| Error::Corrupt("stored certificate expiry".into()))?;
            if !needs_renewal(not_after, now) && stored_names == names_text {
                let key_pem = String::from_utf8(self.m.secrets().open(&sealed)?)
                    .map_err(|_| Error::Corrupt("stored certificate key".into()))?;
                return Ok((
                    CertBundle {
                        ca_pem,
                        cert_pem,
                        key_pem,
                        not_after,
                    },
                    false,
                ));
            }
            tracing::info!(
                not_after,
                "service certificate expires within 30 days: renewing"
            );
        }
        let scope = CaScope::of(self.m.config());
        let issuer = Issuer::new(ca_params(&ca_name, ca_not_before, &scope)?, ca_key);
        let suffix = self.m.config().dns_suffix.clone();
        let mut p = CertificateParams::new(names).map_err(rc)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("*.{suffix}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        // A little in the past, so devices with a slow clock accept it at once.
        p.not_before = at(now - 3_600)?;
        let not_after = now + LEAF_VALIDITY_DAYS * 86_400;
        p.not_after = at(not_after)?;
        let leaf_key = KeyPair::generate().map_err(rc)?;
        let cert = p.signed_by(&leaf_key, &issuer).map_err(rc)?;
        let bundle = CertBundle {
            ca_pem,
            cert_pem: cert.pem(),
            key_pem: leaf_key.serialize_pem(),
            not_after,
        };
        self.set(
            keys::LEAF_KEY,
            &self.m.secrets().seal(bundle.key_pem.as_bytes())?,
        )
        .await?;
        self.set(keys::LEAF_CERT, &bundle.cert_pem).await?;
        self.set(keys::LEAF_NOT_AFTER, &not_after.to_string())
            .await?;
        self.set(keys::LEAF_NAMES, &names_text).await?;
        Ok((bundle, true))
    }

    /// The names the service certificate covers. Browsers and OpenSSL refuse a wildcard directly
    /// under a single-label suffix (`*.mistborn`), so every site is also listed by name.
    fn names(&self) -> Vec<String> {
        let config = self.m.config();
        let suffix = &config.dns_suffix;
        let mut names = vec![
            format!("*.{suffix}"),
            format!("home.{suffix}"),
            format!("dns.{suffix}"),
        ];
        names.extend(
            config
                .proxy
                .services
                .iter()
                .map(|s| format!("{}.{suffix}", s.name)),
        );
        names
    }

    async fn ensure_ca(&self, now: i64) -> Result<(String, i64, KeyPair)> {
        let scope = CaScope::of(self.m.config());
        if let (Some(name), Some(nb), Some(sealed)) = (
            self.get(keys::CA_NAME).await?,
            self.get(keys::CA_NOT_BEFORE).await?,
            self.get(keys::CA_KEY).await?,
        ) {
            if self.get(keys::CA_SCOPE).await?.as_deref() == Some(scope.text().as_str()) {
                let nb = nb
                    .parse()
                    .map_err(|_| Error::Corrupt("stored CA start time".into()))?;
                let pem = String::from_utf8(self.m.secrets().open(&sealed)?)
                    .map_err(|_| Error::Corrupt("stored CA key".into()))?;
                return Ok((name, nb, KeyPair::from_pem(&pem).map_err(rc)?));
            }
            // Issued before CAs carried name constraints, or for another suffix or subnet: a CA
            // that devices trust for every domain is replaced (devices install the new one).
            tracing::warn!(
                ca = %name,
                "the local CA is not limited to {}: issuing a new CA and service certificate; \
                 devices must install the new CA",
                scope.text()
            );
            return self.new_ca(now, &scope, Some(&sealed)).await;
        }
        self.new_ca(now, &scope, None).await
    }

    /// Issues a CA for `scope`. `replacing` is the sealed key of the CA it replaces: only the
    /// writer that swaps that value stands, so concurrent starts agree on one CA.
    async fn new_ca(
        &self,
        now: i64,
        scope: &CaScope,
        replacing: Option<&str>,
    ) -> Result<(String, i64, KeyPair)> {
        // A unique name per CA, so two Mistborn CAs on one device never clash.
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("Mistborn Local CA {}", &id[..8]);
        let key = KeyPair::generate().map_err(rc)?;
        let not_before = now - 3_600;
        let cert = ca_params(&name, not_before, scope)?
            .self_signed(&key)
            .map_err(rc)?;
        let sealed = self.m.secrets().seal(key.serialize_pem().as_bytes())?;
        let won = match replacing {
            None => self.m.store().setting_init(keys::CA_KEY, &sealed).await? == sealed,
            Some(old) => {
                sqlx::query("UPDATE settings SET value = $1 WHERE key = $2 AND value = $3")
                    .bind(&sealed)
                    .bind(keys::CA_KEY)
                    .bind(old)
                    .execute(self.m.store().pool())
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        if !won {
            // Another process issued one first: use it.
            return Box::pin(self.ensure_ca(now)).await;
        }
        self.set(keys::CA_NAME, &name).await?;
        self.set(keys::CA_NOT_BEFORE, &not_before.to_string())
            .await?;
        self.set(keys::CA_CERT, &cert.pem()).await?;
        self.set(keys::CA_SCOPE, &scope.text()).await?;
        Ok((name, not_before, key))
    }

    /// Ensures the certificates and writes them as PEM files under `<data dir>/tls/` for the proxy
    /// (the key mode 0600).
    pub async fn write_files(&self, now: i64) -> Result<WrittenCerts> {
        let (bundle, issued) = self.ensure_reporting(now).await?;
        let dir = self.m.config().data_dir.join("tls");
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        crate::crypto::write_private_file(&files.key, bundle.key_pem.as_bytes())?;
        for (path, pem) in [(&files.ca, &bundle.ca_pem), (&files.cert, &bundle.cert_pem)] {
            std::fs::write(path, pem).map_err(|e| Error::io(path, e))?;
        }
        Ok(WrittenCerts { files, issued })
    }
}
