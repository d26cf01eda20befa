//! `mistborn user ...` and `mistborn token ...`: accounts and API tokens, as the host's operator.

use std::io::BufRead;

use mistborn_core::users::{NewUser, Role};
use mistborn_core::{ADMIN_USERNAME, Actor, Error, Mistborn, Result};

use crate::cli::{PasswordSource, TokenCommand, UserCommand};
use crate::output::{table, time};

const ME: &Actor = &Actor::System;

/// The password the operator chose, or a generated one (then also returned for printing).
fn password(source: &PasswordSource) -> Result<(String, bool)> {
    if let Some(p) = &source.password {
        return Ok((p.clone(), false));
    }
    if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("<stdin>", e))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err(Error::invalid(
                "password",
                "standard input had no password on its first line",
            ));
        }
        return Ok((p, false));
    }
    let generated: String = mistborn_core::crypto::new_token()
        .trim_start_matches(mistborn_core::crypto::TOKEN_PREFIX)
        .chars()
        .take(20)
        .collect();
    Ok((generated, true))
}

pub async fn user(m: &Mistborn, cmd: UserCommand) -> Result<()> {
    let users = m.users();
    match cmd {
        UserCommand::Add {
            name,
            superuser,
            password: source,
        } => {
            let (password, generated) = password(&source)?;
            let role = if superuser {
                Role::Superuser
            } else {
                Role::Regular
            };
            let user = users
                .create(
                    ME,
                    NewUser {
                        username: name,
                        password: password.clone(),
                        role,
                    },
                )
                .await?;
            println!(
                "created {} user '{}' ({})",
                user.role, user.username, user.id
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List => {
            let rows: Vec<Vec<String>> = users
                .list(ME)
                .await?
                .into_iter()
                .map(|u| {
                    vec![
                        u.username.to_string(),
                        u.role.to_string(),
                        u.id.to_string(),
                        time(u.created_at),
                    ]
                })
                .collect();
            print!("{}", table(&["USERNAME", "ROLE", "ID", "CREATED"], &rows));
        }
        UserCommand::Remove { name } => {
            users.delete(ME, &name).await?;
            println!("deleted user '{name}' with their profiles and tokens");
        }
        UserCommand::Passwd {
            name,
            password: source,
        } => {
            let (password, generated) = password(&source)?;
            users.set_password(ME, &name, &password).await?;
            println!("password of '{name}' changed");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Role { name, role } => {
            let user = users.set_role(ME, &name, role.parse()?).await?;
            println!("'{}' is now {}", user.username, user.role);
        }
    }
    Ok(())
}

pub async fn token(m: &Mistborn, cmd: TokenCommand) -> Result<()> {
    let users = m.users();
    match cmd {
        TokenCommand::Add { name, user } => {
            let owner = user.as_deref().unwrap_or(ADMIN_USERNAME);
            let new = users.create_token(ME, owner, &name).await?;
            eprintln!(
                "created token '{}' ({}) for '{owner}'; the secret below is shown only now:",
                new.token.name, new.token.id
            );
            println!("{}", new.secret);
        }
        TokenCommand::List { user } => {
            let owners = match user {
                Some(u) => vec![users.get(ME, &u).await?],
                None => users.list(ME).await?,
            };
            let mut rows = Vec::new();
            for owner in owners {
                for t in users.list_tokens(ME, owner.id.as_str()).await? {
                    rows.push(vec![
                        t.id.to_string(),
                        owner.username.to_string(),
                        t.name,
                        time(t.created_at),
                        t.last_used_at.map_or_else(|| "never".into(), time),
                    ]);
                }
            }
            print!(
                "{}",
                table(&["ID", "USER", "NAME", "CREATED", "LAST USED"], &rows)
            );
        }
        TokenCommand::Revoke { id } => {
            users.revoke_token(ME, &id).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
