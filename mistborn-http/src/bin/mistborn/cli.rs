//! The command line: every subcommand with its `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ENV_HELP: &str = "\
Configuration: --config FILE (mistborn.toml), then these environment variables override it:
  MISTBORN_DATA_DIR, MISTBORN_DATABASE_URL, MISTBORN_ENDPOINT, MISTBORN_HTTP_LISTEN,
  MISTBORN_DNS_SUFFIX, MISTBORN_WG_INTERFACE, MISTBORN_WG_PORT, MISTBORN_SUBNET_V4,
  MISTBORN_SUBNET_V6, MISTBORN_DATAPLANE
and --data-dir overrides both. Commands other than `serve` act directly on the data dir as the
host's operator (full rights); keep the data dir readable by root only.
Logs go to stderr (coloured only on a terminal); MISTBORN_LOG sets the filter, e.g. `debug` or
`info,mistborn_core::dns=debug`.";

/// Mistborn: a self-hosted private-cloud gateway (WireGuard VPN, DNS filtering, firewall, MFA).
#[derive(Debug, Parser)]
#[command(name = "mistborn", version, after_help = ENV_HELP)]
pub struct Cli {
    /// Configuration file (TOML); without it, built-in defaults.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MISTBORN_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Data directory (database, key files, admin password); overrides the config file and
    /// MISTBORN_DATA_DIR.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the REST API under /api/v1 (initialises the data dir on first start).
    ///
    /// Runs the WireGuard data plane, the nftables firewall (table `inet mistborn`), the DNS
    /// resolver and the upkeep tasks in the current network namespace. Without root (or without
    /// wireguard/nft) the data plane and firewall say why they are OFF and the API is served
    /// anyway. Stops cleanly on SIGINT (Ctrl-C) or SIGTERM; the firewall table stays in force.
    Serve {
        /// Listen address of the HTTP API (overrides http_listen / MISTBORN_HTTP_LISTEN), e.g.
        /// 127.0.0.1:5000; port 0 picks a free port and prints it.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Initialise the data dir (database, keys, the `admin` superuser and its `default` profile)
    /// and print the admin password.
    Init,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage WireGuard profiles (one per device).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Print a profile's client config and its QR code (for the WireGuard phone apps).
    ///
    /// Without PROFILE: admin's `default` profile.
    Getconf {
        /// Profile id, or name among the user's profiles.
        #[arg(value_name = "PROFILE")]
        profile: Option<String>,
        /// Owner of a profile given by name (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Also print a QR code even when stdout is not a terminal (it is printed on a terminal
        /// anyway; redirected output gets only the config, which wg-quick can read).
        #[arg(long, conflicts_with = "no_qr")]
        qr: bool,
        /// Print only the config, no QR code, even on a terminal.
        #[arg(long)]
        no_qr: bool,
    },
    /// Manage API tokens (for `Authorization: Bearer <token>`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Back up or restore the whole database.
    #[command(subcommand)]
    Db(DbCommand),
    /// DNS filtering: block lists, allow/deny rules, query log, statistics.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Second factor (TOTP) and login sessions.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// The nftables firewall: policy, probe metrics, client-to-client, Coppercloud IP lists.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// Print the local CA certificate (PEM) that devices import to trust Mistborn's HTTPS sites.
    Ca,
    /// Print the OpenAPI description of the REST API (JSON).
    Openapi,
}

/// `mistborn auth ...`
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Show whether a user has a second factor.
    Status {
        /// User name or id.
        user: String,
    },
    /// Start a TOTP enrollment: prints the secret, the otpauth URI and a QR code to scan.
    Enroll {
        /// User name or id.
        user: String,
    },
    /// Confirm an enrollment with a first code; prints the recovery codes (shown once).
    Confirm {
        /// User name or id.
        user: String,
        /// Six digits from the authenticator app.
        code: String,
    },
    /// Remove a user's second factor and end their sessions (they enroll again).
    Reset {
        /// User name or id.
        user: String,
    },
    /// List live login sessions.
    Sessions,
    /// End a login session.
    Revoke {
        /// Session id (see `auth sessions`).
        id: String,
    },
}

/// Where a new password comes from.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// The password (visible in the process list and shell history; prefer --password-stdin).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `mistborn user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password or --password-stdin a password is generated and printed.
    Add {
        /// Login name: 1-32 lowercase letters, digits, '.', '_' or '-'.
        name: String,
        /// Make the user a superuser (manages everything).
        #[arg(long)]
        superuser: bool,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List users.
    List,
    /// Delete a user with all their profiles and tokens.
    Remove {
        /// Username or id.
        name: String,
    },
    /// Set a user's password. Without --password or --password-stdin a password is generated
    /// and printed.
    Passwd {
        /// Username or id.
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change a user's role.
    Role {
        /// Username or id.
        name: String,
        /// The new role.
        #[arg(value_parser = ["superuser", "regular"])]
        role: String,
    },
}

/// `mistborn peer ...`
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Create a profile: allocates tunnel addresses and makes the keys.
    Add {
        /// Profile name, unique per user (e.g. "laptop").
        name: String,
        /// Owner (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// `wireguard`: the tunnel is the only factor; `mfa`: the device must also sign in.
        #[arg(long, default_value = "wireguard", value_parser = ["wireguard", "mfa"])]
        kind: String,
        /// Let other tunnel clients reach this device.
        #[arg(long)]
        client_to_client: bool,
        /// UDP port the device dials: the configured one, 53 or 443.
        #[arg(long, default_value = "default", value_parser = ["default", "udp53", "udp443"])]
        port: String,
        /// The device's own WireGuard public key (base64), when it generated its key pair;
        /// Mistborn then never holds the private key.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// List profiles (all users' unless --user).
    List {
        /// Only this user's profiles.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Change a profile: name, kind, client-to-client, port (the rest stays). Bad input changes
    /// nothing.
    Update {
        /// Profile id, or name among the user's profiles.
        #[arg(value_name = "ID|NAME")]
        profile: String,
        /// Owner of a profile given by name (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// New name, unique per user.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// `wireguard` or `mfa`.
        #[arg(long, value_parser = ["wireguard", "mfa"])]
        kind: Option<String>,
        /// Let other opted-in tunnel clients reach this device (`true` or `false`).
        #[arg(long, value_name = "BOOL")]
        client_to_client: Option<bool>,
        /// UDP port the device dials: `default`, `udp53` or `udp443`.
        #[arg(long, value_parser = ["default", "udp53", "udp443"])]
        port: Option<String>,
    },
    /// Delete a profile; its addresses become free.
    Remove {
        /// Profile id, or name among the user's profiles.
        #[arg(value_name = "ID|NAME")]
        profile: String,
        /// Owner of a profile given by name (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
}

/// `mistborn token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown this once) on standard output.
    Add {
        /// A label, unique per user (e.g. "ansible").
        name: String,
        /// Owner (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// List tokens (all users' unless --user); secrets are never shown again.
    List {
        /// Only this user's tokens.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Token id (see `token list`).
        id: String,
    },
}

/// `mistborn db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Write a backup of everything (JSON, including the key that opens stored private keys) to
    /// FILE, mode 0600. An existing FILE is refused unless --force.
    Backup {
        /// Output file.
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Bring the database schema up to date (every command does it on opening; this one does
    /// only that, for upgrades: `scripts/install.sh` runs it on a copy first). Fails, changing
    /// nothing of a failed step, when a migration cannot be applied.
    Migrate,
    /// Restore a backup into the data dir and database (which must be empty unless --force).
    Restore {
        /// A file written by `db backup`.
        file: PathBuf,
        /// Replace everything that is there.
        #[arg(long)]
        force: bool,
    },
}

/// `mistborn dns ...`
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// List the block lists with their entry, line-error and not-for-DNS counts.
    Lists,
    /// Add a block list by URL (downloaded now, then on the refresh schedule) or from a file
    /// (hosts, plain domains or adblock `||name^` / `@@||name^` lines).
    Add {
        /// Unique name, shown as "blocked by" in the log.
        name: String,
        /// http(s) URL.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// A list file to upload.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Add an uploaded list from a file, or replace the copy of an uploaded list of that name.
    Upload {
        /// List name.
        name: String,
        /// The list file (hosts, plain domains or adblock syntax).
        file: PathBuf,
    },
    /// Show the line errors of a list's last good copy (the first 50).
    Errors {
        /// List name or id.
        list: String,
    },
    /// Turn a list on.
    Enable {
        /// List name or id.
        list: String,
    },
    /// Turn a list off.
    Disable {
        /// List name or id.
        list: String,
    },
    /// Download a URL list again; a failed or garbage download keeps the last good copy (exit 1).
    Refresh {
        /// List name or id.
        list: String,
    },
    /// Delete a list.
    Remove {
        /// List name or id.
        list: String,
    },
    /// Your own allow / deny / wildcard-deny rules.
    #[command(subcommand)]
    Rule(DnsRuleCommand),
    /// Show the query log, newest first, with the profile and user behind each address.
    Log {
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only this user's queries.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only this client address.
        #[arg(long, value_name = "ADDR")]
        client: Option<String>,
        /// Only blocked queries.
        #[arg(long)]
        blocked: bool,
    },
    /// Totals, blocked share, top domains, top blocked and top clients.
    Stats {
        /// Over the last this many hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Entries per ranking.
        #[arg(long, default_value_t = 10)]
        top: i64,
    },
}

/// `mistborn dns rule ...`
#[derive(Debug, Subcommand)]
pub enum DnsRuleCommand {
    /// List the rules.
    List,
    /// Add a rule: `allow` (the name and its subdomains are never blocked), `deny` (exactly the
    /// name) or `wildcard` (every subdomain of the name).
    Add {
        /// Rule kind.
        #[arg(value_parser = ["allow", "deny", "wildcard"])]
        kind: String,
        /// The domain.
        name: String,
    },
    /// Delete a rule by id (see `dns rule list`).
    Remove {
        /// Rule id.
        id: String,
    },
}

/// `mistborn firewall ...`
#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Show the policy the store and config ask for, and whether the table is in force here
    /// (reading the live table needs root in the daemon's network namespace).
    Policy,
    /// Probe metrics: live counters of the table (root, in the daemon's network namespace), or
    /// with --history the stored samples over time.
    Metrics {
        /// Entries per ranking.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Show the stored history instead of the live counters.
        #[arg(long)]
        history: bool,
        /// History: over the last this many hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// History: bucket width in minutes.
        #[arg(long, default_value_t = 60)]
        bucket_minutes: u32,
    },
    /// Let other tunnel clients reach a profile's device, or not.
    C2c {
        /// Profile id, or name among the user's profiles.
        #[arg(value_name = "PROFILE")]
        profile: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// Owner of a profile given by name (default: admin).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// List the Coppercloud IP lists.
    Lists,
    /// Manage one Coppercloud IP list.
    #[command(subcommand)]
    List(CopperListCommand),
}

/// `mistborn firewall list ...`
#[derive(Debug, Subcommand)]
pub enum CopperListCommand {
    /// Add a list by URL (downloaded now, then on the refresh schedule) or from a file: one
    /// address, CIDR or first-last range a line, IPv4 or IPv6, `#` comments. A malformed line
    /// is reported with its number and nothing is added.
    Add {
        /// Unique name.
        name: String,
        /// http(s) URL.
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "file",
            required_unless_present = "file"
        )]
        url: Option<String>,
        /// A list file to upload.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// block: drop traffic to and from these addresses; allow: exempt them from block lists.
        #[arg(long, default_value = "block", value_parser = ["block", "allow"])]
        mode: String,
    },
    /// Change a list: name, mode, on/off, URL (downloaded now) or content from a file. Bad
    /// input (a malformed line, a failed download) changes nothing.
    Set {
        /// List name or id.
        key: String,
        /// New name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// New mode.
        #[arg(long, value_parser = ["block", "allow"])]
        mode: Option<String>,
        /// Use the list or not.
        #[arg(long, value_parser = ["on", "off"])]
        enabled: Option<String>,
        /// New http(s) URL.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// New content from a file.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Delete a list.
    Rm {
        /// List name or id.
        key: String,
    },
    /// Download a URL list again; a failed or garbage download keeps the last good copy (exit 1).
    Refresh {
        /// List name or id.
        key: String,
    },
    /// Show one list.
    Show {
        /// List name or id.
        key: String,
    },
}
