//! Telling the operator how to log in as a new org's first admin. A generated password is
//! shown on a terminal only: standard output is where `realnet serve` logs go, so when it is
//! not a terminal the password goes to a file in the data folder that only its owner can read
//! (as Jenkins keeps its initialAdminPassword), and only that file's path is printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use realnet::orgs::InitReport;

/// The file a generated first-admin password of `org` is written to when standard output is
/// not a terminal: `initial-admin-password` for the default org, with `-<org>` for others.
pub fn password_file(data_dir: &Path, org: &str, default_org: &str) -> PathBuf {
    if org == default_org {
        data_dir.join("initial-admin-password")
    } else {
        data_dir.join(format!("initial-admin-password-{org}"))
    }
}

/// Prints how to log in as the first admin the report created, if any, to `out`; a generated
/// password goes to `out` when it is a terminal, else to `file` (replaced, mode 0600).
pub fn announce(
    report: &InitReport,
    base: &str,
    out: &mut dyn Write,
    terminal: bool,
    file: &Path,
) -> anyhow::Result<()> {
    let Some(admin) = &report.admin else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(out, "Created the admin account of org {:?}.", admin.org)?;
    writeln!(out, "  username: {}", admin.username)?;
    match &admin.generated_password {
        Some(p) if terminal => {
            writeln!(out, "  password: {p}")?;
            writeln!(
                out,
                "This password is shown only now; keep it somewhere safe."
            )?;
        }
        Some(p) => {
            write_secret(file, p)?;
            writeln!(
                out,
                "  password: in {} (readable only by you; delete it once you have kept the password elsewhere)",
                file.display()
            )?;
        }
        None => writeln!(out, "  password: from REALNET_ADMIN_PASSWORD")?,
    }
    writeln!(out, "Log in with:")?;
    writeln!(
        out,
        "  curl -s -X POST {base}/api/auth -H 'content-type: application/json' -d '{{\"username\": \"{}\", \"password\": \"...\", \"org\": \"{}\"}}'",
        admin.username, admin.org
    )?;
    writeln!(out)?;
    Ok(())
}

/// Writes `secret` to a new file at `path` that only its owner can read; a file already there
/// (or a link in its place) is removed first rather than written through.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let cannot = || format!("cannot write the admin password to {}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(cannot)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).with_context(cannot),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(cannot)?;
    writeln!(file, "{secret}").with_context(cannot)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use realnet::orgs::NewAdmin;

    fn report(password: Option<&str>) -> InitReport {
        InitReport {
            created: 7,
            existing: 0,
            kept_deleted: 0,
            admin: Some(NewAdmin {
                org: "default".into(),
                username: "admin".into(),
                generated_password: password.map(str::to_string),
            }),
        }
    }

    fn shown(report: &InitReport, terminal: bool, file: &Path) -> String {
        let mut out = Vec::new();
        announce(report, "http://127.0.0.1:8080", &mut out, terminal, file).expect("announce");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn a_terminal_is_shown_the_password_and_no_file_is_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("initial-admin-password");
        let text = shown(&report(Some("generated secret")), true, &file);
        assert!(text.contains("password: generated secret"), "{text}");
        assert!(!file.exists());
    }

    #[test]
    fn elsewhere_the_password_goes_to_a_file_only_its_owner_reads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("sub").join("initial-admin-password");
        std::fs::create_dir_all(dir.path().join("sub")).expect("dir");
        std::fs::write(&file, "an older, world-readable file").expect("write");
        let text = shown(&report(Some("generated secret")), false, &file);
        assert!(!text.contains("generated secret"), "{text}");
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "generated secret\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_password_from_the_environment_is_never_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("initial-admin-password");
        let text = shown(&report(None), false, &file);
        assert!(text.contains("REALNET_ADMIN_PASSWORD"), "{text}");
        assert!(!file.exists());
        assert_eq!(
            shown(
                &InitReport {
                    admin: None,
                    ..report(None)
                },
                false,
                &file
            ),
            ""
        );
    }
}
