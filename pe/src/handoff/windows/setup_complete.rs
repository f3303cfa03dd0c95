//! The setup scripts. Windows runs `C:\Windows\Setup\Scripts\SetupComplete.cmd` as SYSTEM at
//! the end of its setup. inplace keeps its own lines in `C:\ProgramData\inplace\setupcomplete.cmd`
//! ([`script`]) and puts one marked `call` block into `SetupComplete.cmd` ([`merged`]), keeping
//! whatever an existing one does. The script creates the missing local accounts, registers the
//! agent as an Active Setup component (it runs in each user's session at their first logon,
//! before the desktop), registers the cleanup and report tasks the job needs, logs to
//! `setupcomplete.log`, and deletes itself (it may hold the initial password).

use inplace_agent::job::{Job, JobUser, StoreAfter};

/// The Active Setup component's key.
pub const ACTIVE_SETUP_KEY: &str = r"HKLM\SOFTWARE\Microsoft\Active Setup\Installed Components\inplace-restore";
/// What cannot go into a batch file: a value holding a double quote or a control character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} holds a double quote or a control character, which a setup script cannot carry")]
pub struct Unquotable(pub &'static str);

/// The scheduled task that runs the cleanup (the store's `delete` or `empty`).
pub const CLEANUP_TASK: &str = "inplace-cleanup";
/// The scheduled task that sends the report spool (`inplace.exe report send`).
pub const REPORT_TASK: &str = inplace_agent::reporting::TASK;
/// The report spools' folder under `%ProgramData%\inplace`.
pub const REPORT_DIR: &str = inplace_agent::reporting::spool::DIR;
pub const BEGIN: &str = "rem inplace: begin";
pub const END: &str = "rem inplace: end";
/// The block [`merged`] puts into `SetupComplete.cmd`.
pub const BLOCK: [&str; 3] = [BEGIN, r#"call "%ProgramData%\inplace\setupcomplete.cmd""#, END];

/// A value in double quotes for a batch line: `%` doubled; `None` for what a batch file
/// cannot quote (a `"`, a line break or another control character).
pub fn quoted(s: &str) -> Option<String> {
    escaped(s).map(|e| format!("\"{e}\""))
}

/// `s` with `%` doubled, for inside a quoted batch value; `None` as for [`quoted`].
fn escaped(s: &str) -> Option<String> {
    (!s.chars().any(|c| c == '"' || c.is_control())).then(|| s.replace('%', "%%"))
}

/// `setupcomplete.cmd`, CRLF-terminated. `password` is the created accounts' initial one
/// (they must change it at their first logon). Names and the password must pass [`quoted`].
pub fn script(job: &Job, password: &str) -> Result<String, Unquotable> {
    let q = |what: &'static str, s: &str| quoted(s).ok_or(Unquotable(what));
    let mut l: Vec<String> = vec![
        "@echo off".into(),
        format!("rem inplace: the first-logon restore of the migrated users (job {})", job.job_id),
        r#"set "LOG=%ProgramData%\inplace\setupcomplete.log""#.into(),
        format!(r#"echo %DATE% %TIME% setup complete; job {} >> "%LOG%""#, job.job_id),
    ];
    for u in &job.users {
        let name = q("the user name", &u.name)?;
        if creates_account(job, u) {
            let pw = q("the initial password", password)?;
            l.push(format!(r#"net user {name} >nul 2>&1 || net user {name} {pw} /add /logonpasswordchg:yes >> "%LOG%" 2>&1"#));
            l.push(format!(r#"net user {name} >nul 2>&1 && echo %DATE% %TIME% account {name}: present >> "%LOG%""#));
        } else if u.kind == "local" {
            l.push(format!("rem {name}: created by the new Windows itself (restore.create_users is off)"));
        } else {
            l.push(format!("rem {name}: a {} account, never created here; it signs in as before", u.kind));
        }
    }
    // What the PE wrote carries its driver's default security: reset everything to inherit
    // from ProgramData (users read and may create files, as the agent's report), then let each
    // user move and delete their own staged copy.
    l.push(r#"icacls "%ProgramData%\inplace" /reset /T /C /Q >> "%LOG%" 2>&1"#.into());
    for u in &job.users {
        let who = match &u.sid {
            Some(sid) => q("the SID", &format!("*{sid}"))?,
            None => q("the user name", &u.name)?,
        };
        let name = escaped(&u.name).ok_or(Unquotable("the user name"))?;
        l.push(format!(r#"icacls "%ProgramData%\inplace\staged\{name}" /grant {who}:(OI)(CI)M /T /C /Q >> "%LOG%" 2>&1"#));
        l.push(format!(r#"icacls "%ProgramData%\inplace\staged\{name}.json" /grant {who}:M /C /Q >> "%LOG%" 2>&1"#));
    }
    if job.report {
        // The spool holds the collector's token: SYSTEM and the administrators only.
        l.push(format!(r#"icacls "%ProgramData%\inplace\{REPORT_DIR}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F /T /C /Q >> "%LOG%" 2>&1"#));
    }
    let stub = r#""\"%%ProgramData%%\inplace\inplace.exe\" restore --staged \"%%ProgramData%%\inplace\staged\" --user %%USERNAME%%""#;
    l.extend([
        format!(r#"set "KEY={ACTIVE_SETUP_KEY}""#),
        r#"reg add "%KEY%" /ve /d "inplace: restore the migrated files" /f >> "%LOG%" 2>&1"#.into(),
        format!(r#"reg add "%KEY%" /v StubPath /t REG_EXPAND_SZ /d {stub} /f >> "%LOG%" 2>&1"#),
        r#"reg add "%KEY%" /v Version /d "1,0,0,0" /f >> "%LOG%" 2>&1"#.into(),
        r#"reg add "%KEY%" /v IsInstalled /t REG_DWORD /d 1 /f >> "%LOG%" 2>&1"#.into(),
        r#"echo %DATE% %TIME% the restore will run at each user's first logon >> "%LOG%""#.into(),
    ]);
    if job.store_after != StoreAfter::Keep {
        // Once every user is restored, the store goes (`inplace.exe cleanup`, as SYSTEM): tried
        // five minutes after each logon, until it has run; it then deletes its own task.
        l.push(format!(
            r#"schtasks /create /tn {CLEANUP_TASK} /sc onlogon /delay 0005:00 /ru SYSTEM /rl HIGHEST /tr "\"%ProgramData%\inplace\inplace.exe\" cleanup --staged \"%ProgramData%\inplace\staged\" --task {CLEANUP_TASK}" /f >> "%LOG%" 2>&1"#
        ));
    }
    if job.report {
        // The job's events and each user's restore report go to the collector (`inplace.exe
        // report send`, as SYSTEM): at once, then every two minutes until all is sent; it then
        // deletes its own task.
        l.push(format!(
            r#"schtasks /create /tn {REPORT_TASK} /sc minute /mo 2 /ru SYSTEM /rl HIGHEST /tr "\"%ProgramData%\inplace\inplace.exe\" report send --staged \"%ProgramData%\inplace\staged\" --task {REPORT_TASK}" /f >> "%LOG%" 2>&1"#
        ));
        l.push(format!(r#"schtasks /run /tn {REPORT_TASK} >> "%LOG%" 2>&1"#));
    }
    l.push(r#"(goto) 2>nul & del "%~f0""#.into());
    Ok(crlf(&l))
}

/// The setup script creates `user`'s account when it is missing.
pub fn creates_account(job: &Job, user: &JobUser) -> bool {
    job.create_users && user.kind == "local"
}

/// `SetupComplete.cmd` with inplace's block: the block alone after `@echo off` when there is
/// none; otherwise the existing lines kept as they are, an earlier block of ours replaced,
/// and ours put before the first `exit` line (lines after it would never run), or at the end.
pub fn merged(existing: Option<&str>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut inside = false;
    for line in existing.unwrap_or("").lines() {
        let t = line.trim();
        if t.eq_ignore_ascii_case(BEGIN) {
            inside = true;
        } else if inside && t.eq_ignore_ascii_case(END) {
            inside = false;
        } else if !inside {
            lines.push(line.trim_end_matches('\r').to_string());
        }
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        lines.push("@echo off".into());
    }
    let at = lines.iter().position(|l| is_exit(l)).unwrap_or(lines.len());
    lines.splice(at..at, BLOCK.iter().map(|s| s.to_string()));
    crlf(&lines)
}

fn is_exit(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches('@').to_ascii_lowercase();
    t == "exit" || t.starts_with("exit ") || t.starts_with("exit/")
}

fn crlf(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use inplace_agent::job::Conflict;

    fn job(create: bool) -> Job {
        let user = |name: &str, kind: &str| JobUser { name: name.into(), sid: None, kind: kind.into() };
        Job {
            version: 1,
            job_id: "00ff".into(),
            preset: "lab".into(),
            conflict: Conflict::KeepNew,
            create_users: create,
            store_after: StoreAfter::Keep,
            users: vec![user("Carol", "local"), user("Dave", "domain")],
            report: false,
        }
    }

    #[test]
    fn a_new_setup_complete_holds_the_block_alone() {
        let s = merged(None);
        assert_eq!(s, "@echo off\r\nrem inplace: begin\r\ncall \"%ProgramData%\\inplace\\setupcomplete.cmd\"\r\nrem inplace: end\r\n");
    }

    #[test]
    fn an_existing_one_is_kept_and_the_block_goes_before_its_exit() {
        let oem = "@echo off\r\nreg import oem.reg\r\nexit /b 0\r\n";
        let s = merged(Some(oem));
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines, ["@echo off", "reg import oem.reg", BLOCK[0], BLOCK[1], BLOCK[2], "exit /b 0"]);
        assert_eq!(merged(Some(&s)), s, "merging again changes nothing");
        let plain = merged(Some("echo oem\n"));
        assert_eq!(plain.lines().collect::<Vec<_>>(), ["echo oem", BLOCK[0], BLOCK[1], BLOCK[2]]);
    }

    #[test]
    fn the_script_creates_local_accounts_only_and_registers_the_agent() {
        let s = script(&job(true), "Change-me 100%").unwrap();
        assert!(s.ends_with("\r\n") && !s.replace("\r\n", "").contains('\n'), "CRLF lines");
        assert!(s.contains(r#"net user "Carol" "Change-me 100%%" /add /logonpasswordchg:yes"#), "{s}");
        assert!(!s.contains(r#"net user "Dave""#), "a domain account is never created:\n{s}");
        assert!(s.contains(r#"/v StubPath /t REG_EXPAND_SZ /d "\"%%ProgramData%%\inplace\inplace.exe\" restore --staged \"%%ProgramData%%\inplace\staged\" --user %%USERNAME%%""#));
        assert!(s.contains(r#"icacls "%ProgramData%\inplace\staged\Carol" /grant "Carol":(OI)(CI)M /T /C /Q"#), "{s}");
        assert!(!s.contains("schtasks"), "the store is kept: no cleanup task");
        let none = script(&job(false), "").unwrap();
        assert!(!none.contains("/add"), "{none}");
        let delete = script(&Job { store_after: StoreAfter::Delete, ..job(false) }, "").unwrap();
        assert!(
            delete.lines().any(|l| l.starts_with(r#"schtasks /create /tn inplace-cleanup /sc onlogon /delay 0005:00 /ru SYSTEM /rl HIGHEST /tr "\"%ProgramData%\inplace\inplace.exe\" cleanup --staged \"%ProgramData%\inplace\staged\" --task inplace-cleanup" /f"#)),
            "{delete}"
        );
        assert!(!delete.contains("report send"), "no [report]: no report task");
        let reported = script(&Job { report: true, ..job(false) }, "").unwrap();
        let lines: Vec<&str> = reported.lines().collect();
        let task = lines.iter().position(|l| l.starts_with(r#"schtasks /create /tn inplace-report /sc minute /mo 2 /ru SYSTEM /rl HIGHEST /tr "\"%ProgramData%\inplace\inplace.exe\" report send --staged \"%ProgramData%\inplace\staged\" --task inplace-report" /f"#));
        let run = lines.iter().position(|l| l.starts_with("schtasks /run /tn inplace-report "));
        assert!(task.is_some() && run > task, "{reported}");
        let reset = lines.iter().position(|l| l.contains("/reset /T")).unwrap();
        let locked = lines.iter().position(|l| l.starts_with(r#"icacls "%ProgramData%\inplace\report" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F"#));
        assert!(locked > Some(reset), "the token's folder is closed to users after the reset:\n{reported}");
        assert!(script(&job(true), "a\"b").is_err());
    }
}
