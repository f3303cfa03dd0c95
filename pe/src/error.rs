//! The engine's error: what went wrong (`problem`, in words that name the input, never a
//! command-line flag), in which step, what kind of failure it is, what had been written when it
//! stopped, and what to do as data ([`Hint`]). The front end renders the hints in its own words
//! (the CLI with its flags, the TUI with its keys); the job's journal chooses between retry,
//! rollback and stop from `kind` and `written`.
//!
//! `Display` shows the problem alone, once. Module errors (a store's, an image's) convert into
//! this at the engine's edge; their text becomes the problem and is not chained again.

use serde::{Deserialize, Serialize};

use crate::step::Step;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{problem}")]
pub struct Error {
    pub step: Step,
    pub kind: Kind,
    pub written: Written,
    pub problem: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
}

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The input or the situation is not acceptable (a preset error, a disk that does not fit,
    /// an unpinned image, a mounted partition): fix it and run again.
    Refused,
    /// Data read back or received is damaged (a store, an image, a download).
    Damaged,
    /// A device or file could not be read or written.
    Io,
    /// May work if tried again (a network error, a busy device).
    Transient,
    /// A front end asked the work to stop.
    Cancelled,
    /// A bug in inplace.
    Internal,
}

/// What had been written when the work stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Written {
    /// Nothing, anywhere.
    Nothing,
    /// Only the store; the old OS and the partition table are as they were.
    StoreOnly,
    /// The disk (its table, its partitions) or the restore target was changed.
    Disk,
}

/// What to do next, as data; front ends choose the words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum Hint {
    /// Run the same work again: it continues where it stopped.
    RunAgain,
    /// Put the saved partition table of `disk` back; the old OS then boots as before.
    Rollback { disk: String },
    /// The disk changed since the plan was made: plan again.
    PlanAgain,
    /// Correct the preset (the problem names file, line and column).
    FixPreset,
    /// Ask for a store of at most `max_bytes`.
    SmallerStore { max_bytes: u64 },
    /// Give the store's size (the problem says why it is missing or wrong).
    StoreSize,
    /// Put the store on another disk.
    ExternalStore,
    /// Say that the new image replaces partition `number`, so its free tail may be used.
    Replace { number: u32 },
    /// Say which partitions the new image replaces (none was named), so their free tails may
    /// be used.
    NameReplaced,
    /// Keep partition `number` out of the lay-down.
    Keep { number: u32 },
    /// Allow the restore to create missing accounts.
    CreateUsers,
    /// Several stores were found: name the one to use.
    ChooseStore,
    /// Rebuild the damaged copy of the GPT from the good one while writing.
    RepairGpt,
    /// Capture again into a new store while the old OS is still on the disk.
    CaptureAgain,
    /// Pin the image: its SHA-256 or its signing key.
    PinImage,
    /// Choose the migration rules (no OS was detected to choose them by).
    ChooseRules,
    /// Restore again, although the store is marked restored.
    RestoreAgain,
    /// Give the job the Windows restore agent (`inplace.exe`): a PE built with it, or on a
    /// host the agent's path.
    WindowsAgent,
    /// Sign the preset with the secret key of the PE's preset key and put the signature beside
    /// it, or use a PE built with the key it was signed with.
    SignPreset,
    /// Use an image signed with the secret key of the PE's preset key, or pin the key it is
    /// signed with in the preset.
    SignImage,
    /// Advice in plain words that fit any front end.
    Advice { text: String },
}

impl Error {
    pub fn new(step: Step, kind: Kind, problem: impl Into<String>) -> Error {
        Error { step, kind, written: Written::Nothing, problem: problem.into(), hints: Vec::new() }
    }

    pub fn refused(step: Step, problem: impl Into<String>) -> Error {
        Error::new(step, Kind::Refused, problem)
    }

    pub fn damaged(step: Step, problem: impl Into<String>) -> Error {
        Error::new(step, Kind::Damaged, problem)
    }

    pub fn io(step: Step, problem: impl Into<String>) -> Error {
        Error::new(step, Kind::Io, problem)
    }

    pub fn transient(step: Step, problem: impl Into<String>) -> Error {
        Error::new(step, Kind::Transient, problem)
    }

    pub fn internal(step: Step, problem: impl Into<String>) -> Error {
        Error::new(step, Kind::Internal, problem)
    }

    pub fn cancelled(step: Step, written: Written) -> Error {
        Error::new(step, Kind::Cancelled, format!("{step} was stopped on request")).written(written)
    }

    /// What had been written when this error stopped the work.
    pub fn written(mut self, w: Written) -> Error {
        self.written = w;
        self
    }

    /// Raises `written` to at least `w` (an error from an inner step that wrote less).
    pub fn at_least(mut self, w: Written) -> Error {
        self.written = self.written.max(w);
        self
    }

    pub fn hint(mut self, h: Hint) -> Error {
        if !self.hints.contains(&h) {
            self.hints.push(h);
        }
        self
    }

    pub fn advice(self, text: impl Into<String>) -> Error {
        self.hint(Hint::Advice { text: text.into() })
    }

    /// Moves the error to `step` (an inner module's error seen from the job).
    pub fn in_step(mut self, step: Step) -> Error {
        self.step = step;
        self
    }

    /// Prefixes the problem with what was being worked on (`"{what}: {problem}"`), unless the
    /// problem already starts with it.
    pub fn context(mut self, what: impl AsRef<str>) -> Error {
        let what = what.as_ref();
        if !what.is_empty() && !self.problem.starts_with(what) {
            self.problem = format!("{what}: {}", self.problem);
        }
        self
    }

    pub fn is_cancelled(&self) -> bool {
        self.kind == Kind::Cancelled
    }
}

impl std::fmt::Display for Hint {
    /// The hint in plain words without command names; front ends with their own words (flags,
    /// keys) match on the variant instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hint::RunAgain => f.write_str("run it again: it continues where it stopped"),
            Hint::Rollback { disk } => write!(f, "roll {disk} back to its saved partition table; the old OS then boots as before"),
            Hint::PlanAgain => f.write_str("the disk changed since the plan was made: plan again"),
            Hint::FixPreset => f.write_str("correct the preset and start again"),
            Hint::SmallerStore { max_bytes } => write!(f, "ask for a smaller store ({} or less)", crate::units::human(*max_bytes)),
            Hint::StoreSize => f.write_str("give the store's size, e.g. 20G"),
            Hint::ExternalStore => f.write_str("use an external store"),
            Hint::Replace { number } => write!(f, "if the new image replaces partition {number}, say so"),
            Hint::NameReplaced => f.write_str("say which partitions the new image replaces"),
            Hint::Keep { number } => write!(f, "keep partition {number} out of the lay-down"),
            Hint::CreateUsers => f.write_str("allow the restore to create missing accounts"),
            Hint::ChooseStore => f.write_str("name the store to use"),
            Hint::RepairGpt => f.write_str("allow the damaged GPT copy to be rebuilt from the good one"),
            Hint::CaptureAgain => f.write_str("if the old OS is still on the disk, capture again into a new store"),
            Hint::PinImage => f.write_str("pin the image with its SHA-256 or its signing key"),
            Hint::ChooseRules => f.write_str("choose the migration rules: windows, linux or a rules file"),
            Hint::RestoreAgain => f.write_str("restore again, although the store is marked restored"),
            Hint::WindowsAgent => f.write_str("use a PE built with the Windows restore agent (docs/windows.md, \"The PE's size\")"),
            Hint::SignPreset => f.write_str(
                "sign the preset with the secret key of this PE's preset key and put the signature (its name with .sig added) \
                 beside it on the server, or use a PE built with the key the preset is signed with",
            ),
            Hint::SignImage => f.write_str(
                "sign the image with the secret key of this PE's preset key, or pin the key it is signed with in the preset's [image] key",
            ),
            Hint::Advice { text } => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_problem_once() {
        let e = Error::damaged(Step::Verify, "store s: /home/a is damaged")
            .context("store s")
            .hint(Hint::CaptureAgain)
            .hint(Hint::CaptureAgain);
        assert_eq!(e.to_string(), "store s: /home/a is damaged");
        assert_eq!(e.hints, [Hint::CaptureAgain]);
    }

    #[test]
    fn errors_round_trip_as_json() {
        let e = Error::refused(Step::Carve, "no room").hint(Hint::SmallerStore { max_bytes: 5 }).written(Written::Nothing);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["hints"][0]["do"], "smaller-store");
        assert_eq!(serde_json::from_value::<Error>(v).unwrap(), e);
    }
}
