//! The CLI's words for the engine's errors and hints: the problem, what was written, and what
//! to do, naming this tool's commands and flags.

use crate::error::{Error, Hint};
use crate::units::human;

/// One error as the CLI prints it (after `inplace: error: `).
pub fn error(e: &Error) -> String {
    crate::ui::words::error_with(e, &hint)
}

/// A hint in the CLI's words.
pub fn hint(h: &Hint) -> String {
    match h {
        Hint::Rollback { disk } => format!("Run `inplace rollback --disk {disk} --yes` to put the saved partition table back"),
        Hint::SmallerStore { max_bytes } => format!("Ask for a smaller store (--store-size {} or less)", human(*max_bytes)),
        Hint::StoreSize => "Give --store-size (e.g. 20G) or --store-for N".into(),
        Hint::Replace { number } => format!("If the new image replaces partition {number}, say so with --replace {number}"),
        Hint::NameReplaced => "Name the partitions the new image replaces with --replace N[,N…]".into(),
        Hint::Keep { number } => format!("Keep it with --keep {number}"),
        Hint::CreateUsers => "Create the account, or run again with --create-users".into(),
        Hint::ChooseStore => "Pass --store to choose one".into(),
        Hint::RepairGpt => "Add --repair-gpt to rebuild the damaged copy from the good one".into(),
        Hint::PinImage => "Pin it with --pin-sha256 or --pin-key (a preset: sha256 or key)".into(),
        Hint::ChooseRules => "Pass --rules windows, --rules linux or --rules FILE".into(),
        Hint::RestoreAgain => "Run with --again to restore it again".into(),
        Hint::WindowsAgent => "Pass --agent-windows with the agent scripts/build-agent builds (or build the PE with scripts/build-pe --windows)".into(),
        Hint::SignPreset => "Sign it with `inplace preset sign --key KEY FILE` and put FILE.sig beside it, \
                             or use a PE built with the matching key (scripts/build-pe --preset-key PUB)"
            .into(),
        Hint::SignImage => "Sign the image with the secret key of the preset key (`inplace image create --sign-key KEY`), \
                            or pin the key it is signed with in the preset's [image] key"
            .into(),
        other => crate::ui::words::capitalised(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Step;

    #[test]
    fn problem_state_and_hints_each_once() {
        let e = Error::refused(Step::Carve, "there is no room for a 5 GiB store")
            .hint(Hint::SmallerStore { max_bytes: 1 << 30 })
            .hint(Hint::ExternalStore);
        let s = error(&e);
        assert_eq!(
            s,
            "there is no room for a 5 GiB store; nothing was written. Ask for a smaller store (--store-size 1024 MiB or less). Use an external store"
        );
        let again = Error::refused(Step::Carve, "x; nothing was written");
        assert_eq!(error(&again).matches("nothing was written").count(), 1);
    }
}
