//! The steps of a migration job. Events, errors and the journal name the step they belong to.

use serde::{Deserialize, Serialize};

/// The steps of a migration job, in order, and the engine's other kinds of work. Events and
/// errors name the step they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Reading a preset.
    Preset,
    /// Reading disks, partition tables and filesystems.
    Inspect,
    /// Choosing the disk, the store and the image; nothing is written.
    Plan,
    /// Making the store partition.
    Carve,
    /// Copying the user's files into the store.
    Capture,
    /// Reading the store back.
    Verify,
    /// Downloading a remote image into the store before the first destructive write.
    Stage,
    /// Writing the new OS image.
    LayDown,
    /// Making the new OS restore on its first boot.
    HandOff,
    /// Recording the job as handed off and ending the PE run.
    Finish,
    /// Putting the files back, inside the new OS.
    Restore,
    /// Keeping, emptying or deleting the store after the restore.
    Cleanup,
    /// Putting the saved partition table back.
    Rollback,
    /// Making or checking an OS image outside a job.
    Image,
    /// Sending the job's events to the preset's collector.
    Report,
}

impl Step {
    /// The step's name as events and the journal spell it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preset => "preset",
            Step::Inspect => "inspect",
            Step::Plan => "plan",
            Step::Carve => "carve",
            Step::Capture => "capture",
            Step::Verify => "verify",
            Step::Stage => "stage",
            Step::LayDown => "lay-down",
            Step::HandOff => "hand-off",
            Step::Finish => "finish",
            Step::Restore => "restore",
            Step::Cleanup => "cleanup",
            Step::Rollback => "rollback",
            Step::Image => "image",
            Step::Report => "report",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
