//! `inplace.exe`: the restore agent run at each user's first logon (`docs/windows.md`).
fn main() {
    std::process::exit(inplace_agent::cli::main(std::env::args_os().skip(1).collect()));
}
