//! The `mistborn` command: runs the server and manages users, profiles, tokens and backups
//! directly on the data dir (as the host's operator, `Actor::System`).

mod auth;
mod cli;
mod db;
mod dns;
mod firewall;
mod output;
mod peers;
mod serve;
mod users;

use std::process::ExitCode;

use clap::Parser;
use mistborn_core::{Config, Mistborn, Result};

use cli::{Cli, Command, DbCommand};

#[tokio::main]
async fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader goes away (`mistborn peer list | head`)
    // instead of panicking on a failed print.
    // SAFETY: sets the process-wide disposition of SIGPIPE, which nothing else here handles.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve { .. }));
    // Before any child process starts: DNS sockets passed by systemd must not leak into them.
    mistborn_core::dns::take_passed_sockets();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `MISTBORN_LOG` (an `EnvFilter` directive such as `debug` or
/// `info,mistborn_core::dns=debug`) or the default below; colour only on a terminal, so a journal
/// or a redirected file gets plain text.
fn init_logging(serving: bool) {
    use std::io::IsTerminal;
    // netlink-packet-route warns three times per link query that a newer kernel sends more
    // IFLA_INET6_CONF fields than it knows; the extra fields are ignored and nothing is wrong.
    let default = if serving {
        "info,hickory_server=warn,hickory_resolver=warn,hickory_net=warn,netlink_packet_route::link::buffer_tool=error"
    } else {
        "warn,netlink_packet_route::link::buffer_tool=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MISTBORN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    config.validate()?;
    Ok(config)
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Openapi = cli.command {
        print!("{}", mistborn_http::spec_json());
        return Ok(());
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve { listen } => serve::serve(config, listen).await,
        Command::Init => serve::init(config).await,
        Command::Db(DbCommand::Restore { file, force }) => db::restore(&config, &file, force).await,
        command => {
            let m = Mistborn::open(config).await?;
            let result = match command {
                Command::User(cmd) => users::user(&m, cmd).await,
                Command::Token(cmd) => users::token(&m, cmd).await,
                Command::Peer(cmd) => peers::peer(&m, cmd).await,
                Command::Getconf {
                    profile,
                    user,
                    qr,
                    no_qr,
                } => peers::getconf(&m, profile, user, peers::QrChoice::new(qr, no_qr)).await,
                Command::Db(DbCommand::Backup { file, force }) => {
                    db::backup(&m, &file, force).await
                }
                Command::Db(DbCommand::Migrate) => db::migrated(&m),
                Command::Dns(cmd) => dns::dns(&m, cmd).await,
                Command::Auth(cmd) => auth::auth(&m, cmd).await,
                Command::Firewall(cmd) => firewall::firewall(&m, cmd).await,
                Command::Ca => auth::ca(&m).await,
                Command::Serve { .. }
                | Command::Init
                | Command::Openapi
                | Command::Db(DbCommand::Restore { .. }) => Ok(()),
            };
            m.close().await;
            result
        }
    }
}
