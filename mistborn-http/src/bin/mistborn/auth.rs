//! `mistborn auth ...` and `mistborn ca`: the second factor and sessions, as the operator.

use mistborn_core::{Actor, Mistborn, Result};

use crate::cli::AuthCommand;
use crate::output::{table, time};

fn now() -> i64 {
    ::time::OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn auth(m: &Mistborn, cmd: AuthCommand) -> Result<()> {
    let a = m.auth();
    let system = Actor::System;
    match cmd {
        AuthCommand::Status { user } => {
            let s = a.status(&system, &user).await?;
            println!(
                "enrolled: {}\nconfirmed: {}\nrecovery codes left: {}",
                s.enrolled, s.confirmed, s.recovery_codes_left
            );
        }
        AuthCommand::Enroll { user } => {
            let e = a.enroll(&system, &user, now()).await?;
            println!("secret: {}", e.secret_base32);
            println!("uri: {}", e.otpauth_uri);
            println!("{}", mistborn_core::peers::qr_terminal(&e.otpauth_uri)?);
            println!("confirm with: mistborn auth confirm {user} <code>");
        }
        AuthCommand::Confirm { user, code } => {
            let codes = a.confirm(&system, &user, &code, now()).await?;
            println!("confirmed; recovery codes (each works once, shown only now):");
            for c in codes {
                println!("{c}");
            }
        }
        AuthCommand::Reset { user } => {
            a.reset(&system, &user).await?;
            println!("second factor of {user} removed; their sessions ended");
        }
        AuthCommand::Sessions => {
            let rows: Vec<Vec<String>> = a
                .sessions(&system)
                .await?
                .into_iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.username.to_string(),
                        s.address.to_string(),
                        time(s.created_at),
                        time(s.expires_at),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(&["ID", "USER", "ADDRESS", "SINCE", "EXPIRES"], &rows)
            );
        }
        AuthCommand::Revoke { id } => {
            a.revoke_session(&system, &id).await?;
            println!("session {id} ended");
        }
    }
    Ok(())
}

pub async fn ca(m: &Mistborn) -> Result<()> {
    print!("{}", m.tls().ca_pem(now()).await?);
    Ok(())
}
